/* HDF5 reading helpers shared by every loader: attributes as real clients
 * write them, and sizes checked before anything is allocated.
 *
 * Messages name the attribute or dataset but not the file; loaders prefix
 * the file with kx_fail_context. */
#ifndef KX_H5_H
#define KX_H5_H

#include <hdf5.h>
#include <stddef.h>

/* Turns off HDF5's own error-stack printing (the loaders report instead). */
void kx_h5_quiet(void);

/* Reads the string attribute `name` of `obj` into out (cap bytes, always
 * NUL-terminated).  Accepts what HDF5 clients write: variable-length (h5py's
 * str) or fixed-length (numpy 'S10', C writers) strings, null-terminated,
 * null-padded or space-padded (padding removed), ASCII or UTF-8 character
 * set, a scalar or a one-element array.  Fails on a missing attribute, a
 * non-string one, or a value of cap bytes or more. */
int kx_h5_attr_string(hid_t obj, const char *name, char *out, size_t cap);

/* Reads the one-element numeric attribute `name` into out as mem_type
 * (a native integer or floating type); the stored class must be integer
 * (or enum) for an integer mem_type, integer or float for a float one. */
int kx_h5_attr_scalar(hid_t obj, const char *name, hid_t mem_type, void *out);

/* Checks that a dataset's declared size (elements x element size) is
 * really stored: without filters (compression) the allocated storage must
 * hold all of it, inside a file of file_bytes; with filters, only that no
 * chunk is larger than the machine's memory.  `what` names the dataset. */
int kx_h5_check_stored(hid_t dataset, const char *what, unsigned long long file_bytes);

/* Refuses, before allocating, `bytes` that exceed the machine's physical
 * memory. */
int kx_check_memory(double bytes, const char *what);

/* The size of the file at path in bytes (0 if it cannot be stat'ed). */
unsigned long long kx_file_bytes(const char *path);

/* Writes the scalar attribute `name` of obj: *value in mem_type, stored as
 * file_type.  0, or KX_EIO with a message naming the attribute. */
int kx_h5_write_scalar(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *value);

/* Writers build their file in memory (HDF5's core driver, no backing
 * store) and publish its bytes through core/kx_atomic: libhdf5 never meets
 * a disk error (in 1.10 a failed H5Fclose leaves the file registered and
 * the library crashes at exit), and a full disk gets errno's message.
 * Costs the file's size in memory, twice, while publishing. */
hid_t kx_h5_create_in_memory(void);
/* Closes `file` (always); then publishes its contents at `path`. */
int kx_h5_publish(hid_t file, const char *path);

#endif
