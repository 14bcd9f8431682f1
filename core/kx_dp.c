/* Data parallelism over MPI (kx_dp.h). */
#include "core/kx_dp.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/kx_error.h"

#ifdef KX_HAVE_MPI
#include <mpi.h>
#endif

static int dp_active, dp_rank, dp_size = 1;

static int launched_by_mpirun(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

void kx_dp_init(int *argc, char ***argv) {
#ifdef KX_HAVE_MPI
  if (!launched_by_mpirun()) return;
  int provided;
  /* the OpenMP threads of a rank call no MPI function */
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return;
  MPI_Comm_rank(MPI_COMM_WORLD, &dp_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &dp_size);
  dp_active = 1;
  if (dp_rank > 0) { /* one report per failure: rank 0's (kx_dp_agree) */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1), dup2(null, 2), close(null);
  }
#else
  (void)argc, (void)argv;
  if (launched_by_mpirun() && getenv("OMPI_COMM_WORLD_RANK") && strcmp(getenv("OMPI_COMM_WORLD_RANK"), "0") &&
      strcmp(getenv("OMPI_COMM_WORLD_SIZE"), "1")) {
    /* every copy would train alone and write the same files */
    fprintf(stderr, "kapprox: error: started by mpirun, but this kapprox was built without MPI "
                    "(install OpenMPI, libopenmpi-dev, and rebuild: meson configure build -Dmpi=enabled)\n");
    exit(1);
  }
#endif
}

void kx_dp_finalize(void) {
#ifdef KX_HAVE_MPI
  if (dp_active) MPI_Finalize();
#endif
  dp_active = 0;
}

int kx_dp_active(void) { return dp_active; }
int kx_dp_rank(void) { return dp_rank; }
int kx_dp_size(void) { return dp_size; }

#define MSG_CAP 1000

int kx_dp_agree(int rc) {
#ifdef KX_HAVE_MPI
  if (!dp_active || dp_size == 1) return rc;
  int worst;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (!worst) return 0;
  /* the first failing rank's status and message, to every rank */
  struct {
    int rc;
    char msg[MSG_CAP];
  } mine, *all = malloc((size_t)dp_size * sizeof mine);
  mine.rc = rc;
  snprintf(mine.msg, sizeof mine.msg, "%s", rc ? kx_error_message() : "");
  if (!all) return kx_fail(KX_ENOMEM, "out of memory");
  MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, MPI_COMM_WORLD);
  int r = 0;
  while (r < dp_size && !all[r].rc) r++;
  int out = all[r].rc;
  if (r != dp_rank) kx_fail(out, "rank %d of %d: %s", r, dp_size, all[r].msg);
  free(all);
  return out;
#else
  return rc;
#endif
}

int kx_dp_same(uint64_t value, const char *what) {
#ifdef KX_HAVE_MPI
  if (!dp_active || dp_size == 1) return 0;
  uint64_t *all = malloc((size_t)dp_size * sizeof *all);
  if (!all) return kx_dp_agree(kx_fail(KX_ENOMEM, "out of memory"));
  MPI_Allgather(&value, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
  int r = 1;
  while (r < dp_size && all[r] == all[0]) r++;
  free(all);
  if (r == dp_size) return 0;
  return kx_fail(KX_EINVAL,
                 "the %d processes were started with different %s (rank %d's differ from rank 0's); start every rank "
                 "with the same command and files",
                 dp_size, what, r);
#else
  (void)value, (void)what;
  return 0;
#endif
}

#ifdef KX_HAVE_MPI
static int allgather(const void *mine, size_t n, size_t elem, MPI_Datatype type, void *all) {
  if (dp_active && dp_size > 1) {
    if (n > (size_t)1 << 30) return kx_fail(KX_EINVAL, "%zu values is beyond one MPI message", n);
    MPI_Allgather(mine, (int)n, type, all, (int)n, type, MPI_COMM_WORLD);
    return 0;
  }
  memcpy(all, mine, n * elem);
  return 0;
}
#define ALLGATHER(mine, n, type, all) allgather(mine, n, sizeof *(mine), type, all)
#else
#define ALLGATHER(mine, n, type, all) (memcpy(all, mine, (n) * sizeof *(mine)), 0)
#endif

int kx_dp_allgather_f(const float *mine, size_t n, float *all) { return ALLGATHER(mine, n, MPI_FLOAT, all); }

int kx_dp_allgather_d(const double *mine, size_t n, double *all) { return ALLGATHER(mine, n, MPI_DOUBLE, all); }

int kx_dp_same_args(int argc, char **argv) {
  if (kx_dp_size() == 1) return 0;
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the arguments, each with its 0, and the folder */
  char cwd[4096];
  const char *folder = getcwd(cwd, sizeof cwd) ? cwd : "";
  for (int i = 0; i <= argc; i++) {
    const char *s = i < argc ? argv[i] : folder;
    for (size_t k = 0, n = strlen(s) + 1; k < n; k++) h = (h ^ (unsigned char)s[k]) * 0x100000001b3ull;
  }
  return kx_dp_same(h, "options or working folder");
}

#ifdef KX_HAVE_MPI
static int bcast_check(size_t bytes) {
  return bytes > (size_t)1 << 30 ? kx_fail(KX_EINVAL, "%zu bytes is beyond one MPI message", bytes) : 0;
}
#endif

int kx_dp_bcast(void *buf, size_t bytes) {
#ifdef KX_HAVE_MPI
  if (!dp_active || dp_size == 1) return 0;
  int rc = bcast_check(bytes);
  if (!rc) MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
  return rc;
#else
  (void)buf, (void)bytes;
  return 0;
#endif
}

int kx_dp_bcast_idle(void *buf, size_t bytes) {
#ifdef KX_HAVE_MPI
  if (!dp_active || dp_size == 1) return 0;
  int rc = bcast_check(bytes);
  if (rc) return rc;
  MPI_Request req;
  MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
  if (dp_rank == 0) return MPI_Wait(&req, MPI_STATUS_IGNORE), 0;
  /* looks at least 10 times a second: a message comes at the end
   * of rank 0's work (seconds to hours), so waiting 0.1 s more is nothing */
  long nap_us = 100;
  for (int done = 0;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) return 0;
    struct timespec ts = {0, nap_us * 1000};
    nanosleep(&ts, NULL);
    if (nap_us < 100000) nap_us *= 2;
  }
#else
  (void)buf, (void)bytes;
  return 0;
#endif
}

void kx_dp_abort(const char *why) {
  fprintf(stderr, "kapprox: error: rank %d of %d: %s\n", dp_rank, dp_size, why);
#ifdef KX_HAVE_MPI
  if (dp_active) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
  exit(1);
}
