#include "experiments/model/dec_train_log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"

static const char HEADER[] = "step,lr,train_loss,val_loss,grad_norm,tokens_per_s,elapsed_s\n";

/* Whole file into a NUL-terminated buffer; *text NULL when it does not exist. */
static int slurp(const char *path, char **text, size_t *len) {
  *text = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? 0 : kx_fail(KX_EIO, "cannot read log '%s': %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = kx_malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) free(buf);
      buf = nb, cap *= 2;
    }
  }
  int err = ferror(f);
  fclose(f);
  if (!buf) return kx_fail(KX_ENOMEM, "out of memory reading log '%s'", path);
  if (err) {
    free(buf);
    return kx_fail(KX_EIO, "error reading log '%s'", path);
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return 0;
}

/* Writes to `out` the header and the complete rows of `text` up to `last`. */
static int keep_rows(FILE *out, const char *path, const char *text, uint64_t last) {
  size_t hl = strlen(HEADER);
  if (strncmp(text, HEADER, hl) != 0)
    return kx_fail(KX_EINVAL,
                   "'%s' is not a training log (its first line is not the log header); give another --log "
                   "or remove the file",
                   path);
  fputs(HEADER, out);
  for (const char *row = text + hl; *row;) {
    const char *nl = strchr(row, '\n');
    if (!nl) break; /* the row being written when the run was killed */
    char *end;
    errno = 0;
    unsigned long long step = strtoull(row, &end, 10);
    if (end == row || *end != ',' || errno) break;
    if (step > last) break;
    fwrite(row, 1, (size_t)(nl + 1 - row), out);
    row = nl + 1;
  }
  return 0;
}

int kx_train_log_open(kx_train_log *log, const char *path, int resuming, uint64_t resume_step) {
  memset(log, 0, sizeof *log);
  int stream = kx_output_kind_is_stream(path);
  if (stream < 0) return KX_EIO;
  char *old = NULL;
  size_t old_len = 0;
  int rc = stream || !resuming ? 0 : slurp(path, &old, &old_len);
  if (rc) return rc;
  kx_atomic_file af;
  if (!stream && (rc = kx_atomic_open(&af, path))) {
    free(old);
    return rc;
  }
  if (stream) {
    log->fp = fopen(path, "w");
    if (!log->fp) return kx_fail(KX_EIO, "cannot write log '%s': %s", path, strerror(errno));
    fputs(HEADER, log->fp);
  } else {
    if (old && old_len)
      rc = keep_rows(af.fp, path, old, resume_step);
    else
      fputs(HEADER, af.fp);
    free(old);
    if (rc) {
      kx_atomic_abort(&af);
      return rc;
    }
    if ((rc = kx_atomic_commit(&af))) return rc;
    log->fp = fopen(path, "a");
    if (!log->fp) return kx_fail(KX_EIO, "cannot append to log '%s': %s", path, strerror(errno));
  }
  log->path = strdup(path);
  if (!log->path) {
    fclose(log->fp);
    log->fp = NULL;
    return kx_fail(KX_ENOMEM, "out of memory");
  }
  return fflush(log->fp) ? kx_fail(KX_EIO, "writing log '%s': %s", path, strerror(errno)) : 0;
}

int kx_train_log_row(kx_train_log *log, uint64_t step, double lr, double train_loss, double val_loss,
                     double grad_norm, double tokens_per_s, double elapsed_s) {
  if (!log->fp) return 0;
  fprintf(log->fp, "%llu,%.6g,%.6f,", (unsigned long long)step, lr, train_loss);
  if (!isnan(val_loss)) fprintf(log->fp, "%.6f", val_loss);
  fprintf(log->fp, ",%.4f,%.1f,%.2f\n", grad_norm, tokens_per_s, elapsed_s);
  if (fflush(log->fp) != 0 || ferror(log->fp))
    return kx_fail(KX_EIO, "writing log '%s': %s", log->path, strerror(errno));
  return 0;
}

int kx_train_log_close(kx_train_log *log) {
  int rc = 0;
  if (log->fp && fclose(log->fp) != 0) rc = kx_fail(KX_EIO, "writing log '%s': %s", log->path, strerror(errno));
  free(log->path);
  memset(log, 0, sizeof *log);
  return rc;
}
