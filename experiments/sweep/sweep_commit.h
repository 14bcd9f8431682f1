/* The final files of a sweep or merge (results CSV, summary, slopes and,
 * for merge, the journal) replaced together: after a kill at any moment
 * the reader finds either all old or all new files.
 *
 * Each file is written to "<file>.new" and synced; then a marker
 * "<OUT>.commit" naming the files is written atomically and synced; then
 * every "<file>.new" is renamed over its file and the marker removed.  A
 * kill before the marker leaves the old files (the next run removes the
 * stale ".new" files); a kill after it is rolled forward by the next run
 * (kx_commit_recover), which finishes the renames the marker lists. */
#ifndef KX_SWEEP_COMMIT_H
#define KX_SWEEP_COMMIT_H

#include <stddef.h>
#include <stdio.h>

#define KX_COMMIT_MAX_FILES 4

typedef struct {
  size_t n;
  char *marker;
  char *final[KX_COMMIT_MAX_FILES];
  char *fresh[KX_COMMIT_MAX_FILES]; /* "<final>.new" */
  FILE *fp[KX_COMMIT_MAX_FILES];
} kx_commit_group;

/* Refuses paths that exist and are not regular files: a rename would
 * replace a device, FIFO or directory (as root, /dev/null). */
int kx_commit_check_targets(const char *const *paths, size_t n);

/* Opens "<path>.new" for each of the n paths (after the check above); the marker is "<out>.commit". */
int kx_commit_open(kx_commit_group *g, const char *out, const char *const *paths, size_t n);
/* Syncs, marks, renames, unmarks; errors name the file and the reason. */
int kx_commit_finish(kx_commit_group *g);
void kx_commit_abort(kx_commit_group *g);

/* Before touching OUT's files: finishes a commit interrupted after its
 * marker (roll forward), or removes the ".new" files of one interrupted
 * before it.  *repaired is set when files were rolled forward. */
int kx_commit_recover(const char *out, const char *const *paths, size_t n, int *repaired);

#endif
