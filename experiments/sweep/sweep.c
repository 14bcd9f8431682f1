/* Running a sweep: resume from the journal, evaluate the missing points
 * of this shard in parallel, journal each at once, and write the final
 * files when the shard is complete (see sweep.h). */
#include "experiments/sweep/sweep.h"

#include <cblas.h>
#include <inttypes.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/sweep/journal.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/inputs.h"

/* ---- running ----------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

/* First Ctrl-C (or SIGTERM, which Slurm sends at the time limit): finish
 * the points in flight, which are journalled, and stop.  A second one
 * kills at once; the journal is safe either way. */
static void on_signal(int sig) {
  if (stop_requested) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
  stop_requested = 1;
}

typedef struct {
  size_t p, input, scheme, mi, si;
} point_ref;

static point_ref decode(const kx_sweep *sw, size_t p) {
  const kx_spec *s = &sw->grid;
  point_ref r = {.p = p};
  r.si = p % s->n_seeds;
  p /= s->n_seeds;
  r.mi = p % s->n_m;
  p /= s->n_m;
  r.scheme = p % s->n_schemes;
  r.input = p / s->n_schemes;
  return r;
}

/* Checks that a journal record says what the grid says about its point, so
 * a damaged but checksummed line (or a bug) cannot slip in. */
static int record_matches(const kx_sweep *sw, const char *payload, size_t p) {
  point_ref r = decode(sw, p);
  const kx_spec *s = &sw->grid;
  const kx_spec_input *in = &sw->inputs[r.input];
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%zu,%s,%d,%d,%s,%s,%zu,%" PRIu64 ",", p, in->label, in->layer, in->head,
           kx_spec_kernel_name(s), s->schemes[r.scheme], s->m[r.mi], s->seeds[r.si]);
  return !strncmp(payload, prefix, strlen(prefix));
}

typedef struct {
  size_t done, total, resumed;
  double t0, last_draw;
  int draw;
} progress;

static void draw_progress(progress *pr, int final) {
  double now = kx_now_seconds();
  if (!pr->draw || (!final && now - pr->last_draw < 0.2)) return;
  pr->last_draw = now;
  double el = now - pr->t0;
  size_t fresh = pr->done - pr->resumed;
  double rate = el > 0 ? (double)fresh / el : 0;
  double left = rate > 0 ? (double)(pr->total - pr->done) / rate : 0;
  fprintf(stderr, "\r  sweep: %zu/%zu points (%.0f%%)  %.1f points/s  elapsed %.0fs  left ~%.0fs   ",
          pr->done, pr->total, 100.0 * (double)pr->done / (double)(pr->total ? pr->total : 1), rate, el,
          left);
  if (final) fputc('\n', stderr);
  fflush(stderr);
}

static int cmp_by_m_desc(const void *pa, const void *pb, void *ctx) {
  const kx_sweep *sw = ctx;
  const size_t *m = sw->grid.m;
  point_ref a = decode(sw, *(const size_t *)pa), b = decode(sw, *(const size_t *)pb);
  if (m[a.mi] != m[b.mi]) return m[a.mi] > m[b.mi] ? -1 : 1;
  return (*(const size_t *)pa > *(const size_t *)pb) - (*(const size_t *)pa < *(const size_t *)pb);
}

/* Runs the missing points of one input head in parallel, journalling each
 * as soon as it is done. */
static int run_input(const kx_sweep *sw, kx_heads *heads, size_t u, const size_t *todo, size_t n_todo,
                     kx_journal *j, progress *pr) {
  const kx_spec *s = &sw->grid;
  const kx_spec_input *in = &sw->inputs[u];
  kx_loaded_head h;
  int rc = kx_heads_load(heads, u, &h);
  const kx_head_reference *ref = &h.ref;
  const char *kernel = kx_spec_kernel_name(s);
  int failed = rc;
  char message[512] = "";
  size_t max_m = 0;
  for (size_t i = 0; i < s->n_m; i++)
    if (s->m[i] > max_m) max_m = s->m[i];
  /* each worker evaluates its points in one workspace, allocated once */
#pragma omp parallel if (!rc)
  {
    kx_eval_workspace *w = rc ? NULL : kx_eval_workspace_new(ref, max_m);
    if (!rc && !w) {
#pragma omp critical(kx_sweep_journal)
      if (!failed) {
        snprintf(message, sizeof message, "%s", kx_error_message());
#pragma omp atomic write
        failed = KX_ENOMEM;
      }
    }
#pragma omp for schedule(dynamic, 1)
    for (size_t t = 0; t < n_todo; t++) {
      int skip;
#pragma omp atomic read
      skip = failed;
      if (skip || stop_requested) continue;
      point_ref r = decode(sw, todo[t]);
      double values[KX_N_METRICS];
      int prc =
          kx_eval_point_work(&s->fmap, ref, s->schemes[r.scheme], s->m[r.mi], s->seeds[r.si], 0, w, NULL, values);
      char *payload = NULL;
      /* a failed point is journalled as such (it would fail the same way
       * again) and the sweep goes on */
      int point_failed = prc && kx_point_failure(prc);
      if (!prc || point_failed) {
        payload = kx_sweep_format_record(todo[t], in, kernel, s->schemes[r.scheme], s->m[r.mi], s->seeds[r.si],
                                         ref->q_norm, ref->k_norm, values, point_failed ? kx_error_message() : NULL);
        prc = payload ? 0 : kx_fail(KX_ENOMEM, "out of memory formatting a record");
      }
      /* the write is serialised; the wait for the disk is not, so one
       * thread's fdatasync overlaps the other's computing */
#pragma omp critical(kx_sweep_journal)
      {
        int f;
#pragma omp atomic read
        f = failed;
        if (!prc && !f) prc = kx_journal_write_record(j, payload);
      }
      if (!prc) prc = kx_journal_sync(j);
#pragma omp critical(kx_sweep_journal)
      {
        if (prc && !failed) {
          snprintf(message, sizeof message, "%s", kx_error_message());
#pragma omp atomic write
          failed = prc;
        }
        if (!prc) {
          pr->done++;
          draw_progress(pr, 0);
        }
      }
      free(payload);
      if (sw->throttle_ms && !prc) usleep(sw->throttle_ms * 1000u);
    }
    kx_eval_workspace_free(w);
  }
  if (failed && message[0]) kx_fail(failed, "%s", message);
  if (failed && in->file >= 0)
    kx_fail_context(failed, "%s layer %d head %d: ", in->label, in->layer, in->head);
  if (!rc) kx_loaded_head_free(&h);
  return failed;
}

/* Compares the journal's header with this grid's: a new journal gets the
 * header, an older format of the same grid and shard is upgraded
 * (*upgrade), anything else is a conflict named in the message. */
static int check_header(const kx_sweep *s, kx_journal *j, kx_journal_contents *c, const char *header,
                        const char *jpath, int *upgrade, int *conflict) {
  int rc = 0;
  *conflict = 1;
  /* no complete header: a journal torn while its header was written (no
   * record can follow an incomplete header, so starting over loses
   * nothing), or someone else's file, which is not ours to overwrite */
  if (c->damaged_header)
    return kx_fail(KX_EIO, "'%s' has a damaged header, so its records cannot be trusted", jpath);
  if (!c->header && c->bytes > 0 && strncmp(c->start, "kapprox-sweep-journal", c->bytes < 21 ? c->bytes : 21))
    return kx_fail(KX_EIO, "'%s' is not a sweep journal", jpath);
  *conflict = 0;
  if (!c->header) return kx_journal_start(j, header); /* new journal (or one torn in its header) */
  if (!strcmp(c->header, header)) return 0;
  uint64_t fp;
  size_t np, si, sn;
  char *spec = NULL;
  *conflict = 1;
  if (kx_sweep_parse_header(c->header, &fp, &np, &si, &sn, &spec)) {
    rc = kx_fail(KX_EIO, "'%s' is not a sweep journal", jpath);
  } else if (fp == s->fingerprint && !strcmp(spec, s->spec) && si == s->shard_i && sn == s->shard_n &&
             np == s->n_points) {
    /* the same grid and shard in an older header format: rewrite the header */
    *conflict = 0;
    free(c->header);
    c->header = kx_malloc(strlen(header) + 1);
    if (!c->header) rc = KX_ENOMEM;
    else {
      strcpy(c->header, header);
      *upgrade = 1;
    }
  } else if (fp == s->fingerprint && strcmp(spec, s->spec) == 0) {
    rc = kx_fail(KX_EINVAL, "'%s' holds shard %zu/%zu of this grid, but this run is shard %zu/%zu; "
                 "a journal holds one shard", jpath, si, sn, s->shard_i, s->shard_n);
  } else {
    char diff[320];
    kx_sweep_spec_diff(spec, "the journal", s->spec, "this command", diff, sizeof diff);
    rc = kx_fail(KX_EINVAL, "'%s' belongs to a different grid (grid %016" PRIx64 ", this command's is "
                 "%016" PRIx64 "; first difference: %s); the original grid resumes it", jpath, fp, s->fingerprint, diff);
  }
  free(spec);
  return rc;
}

/* Marks the points the journal holds (done[p] = 1); a duplicate or stray
 * record is dropped (and recomputed if needed), and the journal rewritten
 * without it. */
static int resume(const kx_sweep *s, kx_journal *j, kx_journal_contents *c, int upgrade, unsigned char *done,
                  kx_sweep_report *rep) {
  size_t dup_or_bad = 0;
  for (size_t i = 0; i < c->n; i++) {
    long long p = kx_sweep_record_point(c->records[i]);
    if (p < 0 || (size_t)p >= s->n_points || (size_t)p % s->shard_n != s->shard_i - 1 ||
        !record_matches(s, c->records[i], (size_t)p) || done[p]) {
      free(c->records[i]);
      c->records[i] = NULL;
      dup_or_bad++;
      continue;
    }
    done[p] = 1;
    rep->resumed++;
  }
  if (dup_or_bad) {
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++)
      if (c->records[i]) c->records[w++] = c->records[i];
    c->n = w;
    c->dropped += dup_or_bad;
  }
  rep->dropped = c->dropped;
  return c->dropped || upgrade ? kx_journal_repair(j, c) : 0;
}

/* Computes the points of this shard not done, input by input, until done
 * or a signal asks to stop. */
static int compute_missing(const kx_sweep *s, kx_journal *j, const unsigned char *done, kx_sweep_report *rep) {
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  stop_requested = 0;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  /* points run in parallel; nested BLAS threads would only fight them */
  openblas_set_num_threads(1);
  kx_eval_keep_freed_memory();
  progress pr = {.done = rep->resumed, .total = rep->shard_points, .resumed = rep->resumed,
                 .t0 = kx_now_seconds(), .draw = s->progress};
  size_t per_input = s->grid.n_schemes * s->grid.n_m * s->grid.n_seeds;
  size_t *todo = kx_malloc(per_input * sizeof *todo);
  kx_heads heads;
  int rc = todo ? kx_heads_open_listed(&heads, &s->grid, s->inputs, s->n_inputs) : KX_ENOMEM;
  for (size_t u = 0; u < s->n_inputs && !rc && !stop_requested; u++) {
    size_t n_todo = 0;
    for (size_t p = u * per_input; p < (u + 1) * per_input; p++)
      if (p % s->shard_n == s->shard_i - 1 && !done[p]) todo[n_todo++] = p;
    if (!n_todo) continue;
    /* largest maps first, so the last points to finish are cheap ones */
    qsort_r(todo, n_todo, sizeof *todo, cmp_by_m_desc, (void *)s);
    size_t before = pr.done;
    rc = run_input(s, &heads, u, todo, n_todo, j, &pr);
    rep->computed += pr.done - before;
  }
  draw_progress(&pr, 1);
  if (todo) kx_heads_close(&heads);
  free(todo);
  rep->interrupted = stop_requested != 0;
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  return rc;
}

/* Opens the journal and brings it up to date with this run: checked
 * against the grid, points done marked, the missing ones computed. */
static int run_journal(const kx_sweep *s, const char *jpath, const char *header, kx_sweep_report *rep) {
  kx_journal j;
  kx_journal_contents c;
  int upgrade = 0;
  int rc = kx_journal_open(&j, jpath, s->force, &c);
  if (rc) return rc;
  rc = check_header(s, &j, &c, header, jpath, &upgrade, &rep->conflict);
  for (size_t p = s->shard_i - 1; p < s->n_points; p += s->shard_n) rep->shard_points++;
  unsigned char *done = rc ? NULL : kx_calloc(s->n_points, 1);
  if (!rc && !done) rc = KX_ENOMEM;
  if (!rc) rc = resume(s, &j, &c, upgrade, done, rep);
  kx_journal_contents_free(&c);
  if (!rc && rep->resumed < rep->shard_points) rc = compute_missing(s, &j, done, rep);
  free(done);
  kx_journal_close(&j);
  return rc;
}

int kx_sweep_run(const kx_sweep *s, const char *out, kx_sweep_report *rep) {
  memset(rep, 0, sizeof *rep);
  double t0 = kx_now_seconds();
  char *jpath, *summary, *slopes;
  int rc = kx_sweep_paths(out, &jpath, &summary, &slopes);
  if (rc) return rc;
  free(summary);
  free(slopes);
  char *header = kx_sweep_header(s->fingerprint, s->n_points, s->shard_i, s->shard_n, s->spec);
  /* a previous run killed while replacing the final files: finish that first */
  rc = header ? kx_sweep_recover_outputs(out, &rep->repaired) : KX_ENOMEM;
  /* A results file without its journal cannot be checked against the
   * grid; refuse rather than overwrite someone's numbers. */
  if (!rc && !s->force && access(out, F_OK) == 0 && access(jpath, F_OK) != 0) {
    rep->conflict = 1;
    rc = kx_fail(KX_EIO, "'%s' exists but its journal '%s' does not, so it cannot be checked "
                 "against this grid", out, jpath);
  }
  if (!rc) rc = run_journal(s, jpath, header, rep);
  free(header);
  if (!rc && !rep->interrupted) {
    /* Final files come from the journal alone, so a resumed run, a fresh
     * run and a merge of shards write the same bytes. */
    kx_journal_contents all;
    rc = kx_journal_read(jpath, &all);
    if (!rc && all.n != rep->shard_points)
      rc = kx_fail(KX_EIO, "'%s' holds %zu records after the run, expected %zu", jpath, all.n, rep->shard_points);
    if (!rc) rep->failed = kx_sweep_failed_records(all.records, all.n);
    if (!rc) rc = kx_sweep_finish(out, all.records, all.n, NULL);
    kx_journal_contents_free(&all);
  }
  free(jpath);
  rep->seconds = kx_now_seconds() - t0;
  return rc;
}
