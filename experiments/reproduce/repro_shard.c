/* Sharded reproductions: the run list, its plan file and the dry run
 * (repro_shard.h). */
#include "experiments/reproduce/repro_shard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "experiments/sweep/sweep.h"

#define PLAN_MAGIC "kapprox reproduce shards 1\n"

int kx_repro_shard_parse(const char *spec, kx_repro_shard *sh) {
  int rc = kx_parse_shard(spec, &sh->i, &sh->n);
  return rc ? kx_fail_context(rc, "--shard: ") : 0;
}

int kx_repro_shard_mine(const kx_repro_shard *sh, size_t j) { return !sh->n || j % sh->n == sh->i - 1; }

void kx_repro_shard_line(kx_repro_shard *sh, const char *fmt, ...) {
  va_list ap;
  for (int pass = 0; pass < 2; pass++) {
    va_start(ap, fmt);
    size_t room = sh->plan_cap - sh->plan_len;
    int n = vsnprintf(sh->plan ? sh->plan + sh->plan_len : NULL, sh->plan ? room : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n + 2 <= room && sh->plan) {
      sh->plan_len += (size_t)n;
      sh->plan[sh->plan_len++] = '\n';
      sh->plan[sh->plan_len] = '\0';
      return;
    }
    if (pass) return;
    size_t cap = (sh->plan_cap + (size_t)n + 2) * 2;
    char *p = realloc(sh->plan, cap);
    if (!p) return; /* the plan stays short: compared, it differs, and says so */
    sh->plan = p, sh->plan_cap = cap;
  }
}

void kx_repro_shard_header(kx_repro_shard *sh) {
  if (sh->dry && !sh->said_header) printf("reproduce %s --dry-run: %s\n", sh->table, sh->root);
  sh->said_header = 1;
}

void kx_repro_shard_record(kx_repro_shard *sh, const char *dir) {
  size_t r = strlen(sh->root);
  const char *rel = !strncmp(dir, sh->root, r) && dir[r] == '/' ? dir + r + 1 : dir;
  kx_repro_shard_line(sh, "run %s", rel);
}

/* The plan file's whole text: the plan with its format line and N first. */
static char *plan_text(const kx_repro_shard *sh) {
  size_t cap = sizeof PLAN_MAGIC + 64 + sh->plan_len;
  char *t = kx_malloc(cap);
  if (t) snprintf(t, cap, "%sshards %zu\n%s", PLAN_MAGIC, sh->n, sh->plan ? sh->plan : "");
  return t;
}

static void plan_path(const kx_repro_shard *sh, char *out, size_t cap) {
  snprintf(out, cap, "%s/shards-%s.txt", sh->root, sh->table);
}

/* The whole file, NUL-terminated, and its length (which a NUL byte inside
 * does not cut short). */
static char *read_all(const char *path, size_t *length) {
  FILE *fp = fopen(path, "r");
  if (!fp) return NULL;
  size_t cap = 4096, len = 0;
  char *t = malloc(cap);
  size_t got;
  while (t && (got = fread(t + len, 1, cap - len - 1, fp)) > 0) {
    len += got;
    if (cap - len < 2) {
      char *p = realloc(t, cap *= 2);
      if (!p) free(t);
      t = p;
    }
  }
  fclose(fp);
  if (t) t[len] = '\0';
  *length = len;
  return t;
}

/* The first line where `have` (the file) and `want` differ. */
static void first_difference(const char *have, const char *want, char *a, char *b, size_t cap) {
  while (*have && *want) {
    size_t la = strcspn(have, "\n"), lb = strcspn(want, "\n");
    if (la != lb || memcmp(have, want, la)) break;
    have += la + (have[la] != '\0');
    want += lb + (want[lb] != '\0');
  }
  snprintf(a, cap, "%.*s", (int)strcspn(have, "\n"), *have ? have : "(end of file)");
  snprintf(b, cap, "%.*s", (int)strcspn(want, "\n"), *want ? want : "(end)");
}

/* Compares the plan file (if any) with this shard's plan: 0 if equal or
 * absent (*found says which). */
static int compare_plan(const kx_repro_shard *sh, int *found) {
  char path[4096];
  plan_path(sh, path, sizeof path);
  *found = 0;
  size_t have_len = 0;
  char *have = read_all(path, &have_len);
  if (!have) return errno == ENOENT ? 0 : kx_fail(KX_EIO, "cannot read '%s': %s", path, strerror(errno));
  *found = 1;
  char *want = plan_text(sh);
  int rc = 0;
  if (!want) rc = KX_ENOMEM;
  else if (have_len != strlen(want) || memcmp(have, want, have_len)) {
    char a[512], b[512];
    first_difference(have, want, a, b, sizeof a);
    rc = kx_fail(KX_EINVAL,
                 "'%s' holds the shards of another configuration: it has '%s' where this shard (%zu/%zu) has '%s'; "
                 "give every shard the same options and N, or use another --outdir (remove that file only if "
                 "no shard of the old configuration runs or will run)",
                 path, a, sh->i, sh->n, b);
  }
  free(have);
  free(want);
  return rc;
}

/* A run folder's state for the dry run. */
static const char *run_state(const char *root, const char *rel) {
  char p[8192 + 32];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s/result.txt", root, rel);
  if (stat(p, &st) == 0) return "finished";
  snprintf(p, sizeof p, "%s/%s/.lock", root, rel);
  if (stat(p, &st) == 0) return "claimed (running, or killed: resumed by the next run)";
  snprintf(p, sizeof p, "%s/%s", root, rel);
  if (stat(p, &st) == 0) return "started (resumed by the next run)";
  return "to do";
}

static void print_plan(kx_repro_shard *sh) {
  size_t n = sh->n ? sh->n : 1;
  size_t *todo = kx_calloc(2 * n, sizeof *todo), *all = todo ? todo + n : NULL;
  if (!todo) return;
  kx_repro_shard_header(sh);
  size_t j = 0;
  for (const char *p = sh->plan ? sh->plan : ""; *p;) {
    size_t len = strcspn(p, "\n");
    if (!strncmp(p, "run ", 4)) {
      char rel[4096];
      snprintf(rel, sizeof rel, "%.*s", (int)(len - 4), p + 4);
      const char *state = run_state(sh->root, rel);
      size_t k = j % n;
      all[k]++;
      todo[k] += strcmp(state, "finished") != 0;
      if (sh->n) printf("  shard %zu/%zu%s %s: %s\n", k + 1, sh->n, k + 1 == sh->i ? "*" : " ", rel, state);
      else printf("  %s: %s\n", rel, state);
      j++;
    } else {
      printf("  %.*s\n", (int)len, p);
    }
    p += len + (p[len] != '\0');
  }
  for (size_t k = 0; k < n; k++)
    if (sh->n) printf("shard %zu/%zu%s: %zu runs, %zu to do\n", k + 1, sh->n, k + 1 == sh->i ? " (this one)" : "",
                      all[k], todo[k]);
    else printf("%zu runs, %zu to do\n", all[k], todo[k]);
  if (sh->n) {
    int found = 0;
    int rc = compare_plan(sh, &found);
    if (rc) printf("refused: %s\n", kx_error_message());
    else printf("%s\n", found ? "the folder's shard plan matches" : "no shard has started in this folder yet");
    kx_error_clear();
  }
  fflush(stdout);
  free(todo);
}

int kx_repro_shard_checked(kx_repro_shard *sh) {
  int rc = 0, found;
  if (sh->dry) print_plan(sh);
  else rc = compare_plan(sh, &found);
  sh->mode = KX_SHARD_RUN;
  sh->next = 0;
  return rc;
}

int kx_repro_shard_publish(kx_repro_shard *sh) {
  char path[4096], tmp[4096 + 64];
  plan_path(sh, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  char *t = plan_text(sh);
  if (!t) return KX_ENOMEM;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  size_t len = strlen(t);
  int rc = 0;
  if (fd < 0 || write(fd, t, len) != (ssize_t)len || fsync(fd) != 0)
    rc = kx_fail(KX_EIO, "cannot write '%s': %s", tmp, strerror(errno));
  if (fd >= 0) close(fd);
  free(t);
  /* link() publishes the complete file under its name only if no other
   * shard did first (on NFS too), and then its plan is compared */
  if (!rc && link(tmp, path) != 0) {
    if (errno != EEXIST) rc = kx_fail(KX_EIO, "cannot publish '%s': %s", path, strerror(errno));
    else rc = compare_plan(sh, &(int){0});
  }
  unlink(tmp);
  return rc;
}

void kx_repro_shard_report(const kx_repro_shard *sh, int quiet) {
  if (quiet && !sh->skipped) return;
  fprintf(stderr, "%s shard %zu/%zu: %zu runs finished", sh->table, sh->i, sh->n, sh->done);
  if (sh->skipped)
    fprintf(stderr, ", %zu left to the other processes that claimed them (run this shard again if they die)",
            sh->skipped);
  fprintf(stderr, "; when every shard is done, the same command without --shard writes the tables\n");
}

void kx_repro_shard_free(kx_repro_shard *sh) {
  free(sh->plan);
  sh->plan = NULL;
  sh->plan_len = sh->plan_cap = 0;
}
