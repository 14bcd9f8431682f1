/* Where a fuzz harness puts the bytes of one input so that a loader, which
 * takes a path, can read them.  Loaders open files by name, so each input
 * is written to a file in a private scratch directory, on /dev/shm (memory)
 * when it exists.  An anonymous memfd (/proc/self/fd/N) would be simpler
 * but HDF5 refuses it: H5Fopen resolves the real path of the file and a
 * memfd has none. */
#ifndef KX_FUZZ_INPUT_H
#define KX_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* Replaces the contents of the scratch file "input" with data[0..size)
 * and returns its path (valid until the next call).  Aborts if the file
 * cannot be written: a harness that silently tests nothing is worse than
 * one that stops. */
const char *kx_fuzz_file(const uint8_t *data, size_t size);

/* The private scratch directory (created on first use, removed at exit):
 * under $KX_FUZZ_SCRATCH if set (to compare file systems), else /dev/shm,
 * else /tmp. */
const char *kx_fuzz_dir(void);

/* Writes data[0..size) to dir/name, replacing it; aborts on failure.
 * Returns the path (static buffer, valid until the next call). */
const char *kx_fuzz_write(const char *name, const uint8_t *data, size_t size);

/* Reads file `path` into buf (cap bytes at most): its length, or -1. */
long kx_fuzz_read(const char *path, char *buf, size_t cap);

/* Every harness defines the libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
