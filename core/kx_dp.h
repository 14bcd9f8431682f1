/* Data parallelism over MPI: the processes of one `mpirun -np N kapprox
 * train ...` (or finetune) and the few collectives the training needs.
 *
 * Built with MPI (meson option mpi, on when found), a process started by
 * mpirun (OpenMPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_RANK in the
 * environment) joins the world in kx_dp_init; any other start, and a build
 * without MPI, is a world of one process that calls no MPI function, so
 * the program still runs without mpirun and without MPI installed.
 *
 * Every rank but 0 has its stdout and stderr sent to /dev/null, so a
 * failure is reported once: kx_dp_agree brings the first failing rank's
 * message to every rank before they all stop, never leaving one rank
 * waiting in a collective for another that has given up. */
#ifndef KX_DP_H
#define KX_DP_H

#include <stddef.h>
#include <stdint.h>

/* Joins the MPI world if started by mpirun (and built with MPI). */
void kx_dp_init(int *argc, char ***argv);
void kx_dp_finalize(void);
/* 1 if this process is one of an mpirun world (of any size, 1 included). */
int kx_dp_active(void);
int kx_dp_rank(void);
int kx_dp_size(void);

/* Every rank passes its status (0 or an error with its message); all
 * return the same: 0 if every rank had 0, else the first failing rank's
 * status, with its message ("rank R: ..." when R is not this rank). */
int kx_dp_agree(int rc);
/* Every rank passes `value`; 0 if all are equal, else KX_EINVAL naming the
 * first rank whose value differs from rank 0's and `what`. */
int kx_dp_same(uint64_t value, const char *what);
/* Every rank passes its command line; 0 if the ranks' arguments and
 * working folders are the same, else KX_EINVAL as kx_dp_same ("options or
 * working folder"). */
int kx_dp_same_args(int argc, char **argv);
/* Rank 0's `bytes` bytes at buf, on every rank (MPI_Bcast). */
int kx_dp_bcast(void *buf, size_t bytes);
/* The same for a message a rank may wait for a long time (rank 0 working
 * alone meanwhile): a waiting rank looks for it at least ten times a second
 * (backing off from 0.1 ms to 0.1 s) and sleeps in between, leaving its core to the others, instead of spinning
 * in MPI.  Every rank of one message calls this one (a non-blocking
 * broadcast matches no blocking one). */
int kx_dp_bcast_idle(void *buf, size_t bytes);
/* Ends every rank at once (MPI_Abort) after printing "kapprox: error:
 * <why>" on this one: for a rank that can no longer take part in the
 * collectives the others wait in (out of memory for a message). */
void kx_dp_abort(const char *why) __attribute__((noreturn));
/* all[r * n .. r * n + n) = rank r's `mine` (n floats), on every rank. */
int kx_dp_allgather_f(const float *mine, size_t n, float *all);
/* all[r * n ..] = rank r's `mine` (n doubles), on every rank. */
int kx_dp_allgather_d(const double *mine, size_t n, double *all);

#endif
