#include "core/kx_cli.h"

#include "core/kx_error.h"

#include <errno.h>
#include <getopt.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

void kx_cli_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "kapprox %s: error: ", cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int kx_cli_option_error(const char *cmd, int c, char **argv) {
  if (c == ':') kx_cli_error(cmd, "option %s needs a value (see kapprox %s --help)", argv[optind - 1], cmd);
  else kx_cli_error(cmd, "unknown option '%s' (see kapprox %s --help)", argv[optind - 1], cmd);
  return 2;
}

int kx_cli_value_error(const char *cmd, const char *hint) {
  if (hint) kx_cli_error(cmd, "%s (%s)", kx_error_message(), hint);
  else kx_cli_error(cmd, "%s", kx_error_message());
  return 2;
}

int kx_cli_extra_operand(const char *cmd, const char *operand, const char *hint) {
  if (hint) kx_cli_error(cmd, "unexpected argument '%s' (%s)", operand, hint);
  else kx_cli_error(cmd, "unexpected argument '%s'", operand);
  return 2;
}

int kx_parse_size(const char *s, const char *what, size_t min, size_t max, size_t *out) {
  if (!s || !*s) return kx_fail(KX_EINVAL, "%s: empty value", what);
  errno = 0;
  char *end;
  if (*s == '-') return kx_fail(KX_EINVAL, "%s must be >= %zu, got '%s'", what, min, s);
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return kx_fail(KX_EINVAL, "%s: '%s' is not a whole number", what, s);
  if (v < min || v > max)
    return kx_fail(KX_EINVAL, "%s must be in [%zu, %zu], got %s", what, min, max, s);
  *out = (size_t)v;
  return 0;
}

int kx_parse_u64(const char *s, const char *what, uint64_t *out) {
  if (!s || !*s || *s == '-') return kx_fail(KX_EINVAL, "%s: '%s' is not a non-negative whole number", what, s ? s : "");
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return kx_fail(KX_EINVAL, "%s: '%s' is not a non-negative whole number", what, s);
  *out = (uint64_t)v;
  return 0;
}

int kx_parse_double(const char *s, const char *what, double *out) {
  if (!s || !*s) return kx_fail(KX_EINVAL, "%s: empty value", what);
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end) return kx_fail(KX_EINVAL, "%s: '%s' is not a number", what, s);
  if (isnan(v) || (isinf(v) && errno != ERANGE))
    return kx_fail(KX_EINVAL, "%s: '%s' is not a finite number", what, s);
  if (errno == ERANGE && fabs(v) > 1)
    return kx_fail(KX_EINVAL, "%s: '%s' is too large in magnitude (beyond %g, the largest double)", what, s, DBL_MAX);
  /* strtod flags underflow for subnormal results, which lose precision */
  if (errno == ERANGE || (v != 0 && fabs(v) < DBL_MIN))
    return kx_fail(KX_EINVAL, "%s: '%s' is too small to represent accurately (nonzero values must be at "
                   "least %g in magnitude); use 0 or a larger value", what, s, DBL_MIN);
  *out = v;
  return 0;
}

int kx_parse_nonneg_double(const char *s, const char *what, double *out) {
  double v;
  if (kx_parse_double(s, what, &v)) return KX_EINVAL;
  if (v < 0) return kx_fail(KX_EINVAL, "%s must be >= 0, got '%s'", what, s);
  *out = v;
  return 0;
}

int kx_check_output_path(const char *path, const char *what) {
  if (!path || !*path) return kx_fail(KX_EINVAL, "%s: empty file name", what);
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return kx_fail(KX_EINVAL, "%s: '%s' is a directory; give a file name", what, path);
  size_t len = strlen(path);
  char *dir = kx_malloc(len + 2);
  if (!dir) return KX_ENOMEM;
  strcpy(dir, path);
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
  char *label = kx_malloc(strlen(what) + len + 32);
  int rc = label ? 0 : KX_ENOMEM;
  if (label) {
    sprintf(label, "%s: cannot write '%s'", what, path);
    rc = kx_check_output_dir(dir, label);
  }
  free(label);
  free(dir);
  return rc;
}

int kx_check_output_dir(const char *dir, const char *what) {
  struct stat st;
  int rc = 0;
  if (!dir || !*dir) rc = kx_fail(KX_EINVAL, "%s: empty directory name", what);
  else if (stat(dir, &st) != 0)
    rc = kx_fail(KX_EIO, "%s: directory '%s' %s", what, dir,
                 errno == ENOENT ? "does not exist (create it first)" : strerror(errno));
  else if (!S_ISDIR(st.st_mode))
    rc = kx_fail(KX_EIO, "%s: '%s' is not a directory", what, dir);
  else if (access(dir, W_OK | X_OK) != 0)
    rc = kx_fail(KX_EIO, "%s: no permission to create files in '%s'", what, dir);
  return rc;
}

/* Parses one item "a", "a:b", "a:b:xF" or "a:b:+S" of a size list. */
static int parse_range(const char *item, const char *what, size_t min, size_t max,
                       size_t *out, size_t cap, size_t *n) {
  char buf[128];
  if (strlen(item) >= sizeof buf) return kx_fail(KX_EINVAL, "%s: item '%s' is too long", what, item);
  strcpy(buf, item);
  char *parts[3] = {buf, NULL, NULL};
  int np = 1;
  for (char *p = buf; *p; p++)
    if (*p == ':') {
      if (np == 3) return kx_fail(KX_EINVAL, "%s: '%s' has too many ':' (use a:b or a:b:x2 or a:b:+1)", what, item);
      *p = '\0';
      parts[np++] = p + 1;
    }
  size_t a, b;
  if (kx_parse_size(parts[0], what, min, max, &a)) return KX_EINVAL;
  if (np == 1) {
    if (*n >= cap) return kx_fail(KX_EINVAL, "%s: more than %zu values", what, cap);
    out[(*n)++] = a;
    return 0;
  }
  if (kx_parse_size(parts[1], what, min, max, &b)) return KX_EINVAL;
  if (b < a) return kx_fail(KX_EINVAL, "%s: range '%s' ends before it starts", what, item);
  int geometric = 0;
  size_t step = 1;
  if (np == 3) {
    if (parts[2][0] == 'x') geometric = 1;
    else if (parts[2][0] != '+')
      return kx_fail(KX_EINVAL, "%s: step '%s' must be xF (factor) or +S (increment)", what, parts[2]);
    if (kx_parse_size(parts[2] + 1, what, geometric ? 2 : 1, 1u << 20, &step)) return KX_EINVAL;
  } else {
    /* "a:b" doubles when both ends are >= 1 and b/a > 4, else counts up. */
    geometric = (a >= 1 && b / (a ? a : 1) > 4);
    step = geometric ? 2 : 1;
  }
  if (geometric && a == 0) return kx_fail(KX_EINVAL, "%s: a geometric range cannot start at 0", what);
  for (size_t v = a; v <= b;) {
    if (*n >= cap) return kx_fail(KX_EINVAL, "%s: more than %zu values", what, cap);
    out[(*n)++] = v;
    size_t next = geometric ? v * step : v + step;
    if (next <= v) break;
    v = next;
  }
  return 0;
}

int kx_parse_size_list(const char *s, const char *what, size_t min, size_t max,
                       size_t *out, size_t cap, size_t *n) {
  char **items;
  size_t count;
  *n = 0;
  if (kx_split_list(s, what, &items, &count)) return KX_EINVAL;
  int rc = 0;
  for (size_t i = 0; i < count && !rc; i++) rc = parse_range(items[i], what, min, max, out, cap, n);
  kx_free_strings(items, count);
  return rc;
}

int kx_parse_u64_list(const char *s, const char *what, uint64_t *out, size_t cap, size_t *n) {
  char **items;
  size_t count;
  *n = 0;
  if (kx_split_list(s, what, &items, &count)) return KX_EINVAL;
  int rc = 0;
  for (size_t i = 0; i < count && !rc; i++) {
    char *colon = strchr(items[i], ':');
    uint64_t a, b;
    if (colon) *colon = '\0';
    rc = kx_parse_u64(items[i], what, &a);
    if (!rc) {
      b = a;
      if (colon) rc = kx_parse_u64(colon + 1, what, &b);
      if (!rc && b < a) rc = kx_fail(KX_EINVAL, "%s: range %s:%s ends before it starts", what, items[i], colon + 1);
    }
    for (uint64_t v = a; !rc && v <= b; v++) {
      if (*n >= cap) rc = kx_fail(KX_EINVAL, "%s: more than %zu values", what, cap);
      else out[(*n)++] = v;
      if (v == UINT64_MAX) break;
    }
  }
  kx_free_strings(items, count);
  return rc;
}

int kx_split_list(const char *s, const char *what, char ***items, size_t *n) {
  *items = NULL;
  *n = 0;
  if (!s || !*s) return kx_fail(KX_EINVAL, "%s: empty list", what);
  size_t count = 1;
  for (const char *p = s; *p; p++) count += (*p == ',');
  char **out = kx_calloc(count, sizeof *out);
  if (!out) return KX_ENOMEM;
  const char *start = s;
  for (size_t i = 0; i < count; i++) {
    const char *end = strchr(start, ',');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    if (len == 0) {
      kx_free_strings(out, i);
      return kx_fail(KX_EINVAL, "%s: empty item in list '%s'", what, s);
    }
    out[i] = kx_malloc(len + 1);
    if (!out[i]) {
      kx_free_strings(out, i);
      return KX_ENOMEM;
    }
    memcpy(out[i], start, len);
    out[i][len] = '\0';
    start = end ? end + 1 : start + len;
  }
  *items = out;
  *n = count;
  return 0;
}

void kx_free_strings(char **items, size_t n) {
  if (!items) return;
  for (size_t i = 0; i < n; i++) free(items[i]);
  free(items);
}

int kx_stderr_is_tty(void) { return isatty(STDERR_FILENO); }

static double clock_seconds(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double kx_now_seconds(void) { return clock_seconds(CLOCK_MONOTONIC); }
double kx_thread_cpu_seconds(void) { return clock_seconds(CLOCK_THREAD_CPUTIME_ID); }

int kx_has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}
