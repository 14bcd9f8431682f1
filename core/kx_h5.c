#include "core/kx_h5.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"

/* Longest fixed-length string attribute we read: far above any value the
 * toolkit compares against, far below what would make the read a risk. */
#define KX_H5_MAX_FIXED_STRING 65536

void kx_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Opens attribute `name`, requiring exactly one element. */
static hid_t open_single(hid_t obj, const char *name, hid_t *type) {
  *type = -1;
  htri_t exists = H5Aexists(obj, name);
  if (exists == 0) {
    kx_fail(KX_EIO, "attribute '%s' is missing", name);
    return -1;
  }
  hid_t a = exists > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : -1;
  if (a < 0) {
    kx_fail(KX_EIO, "cannot open attribute '%s'", name);
    return -1;
  }
  hid_t space = H5Aget_space(a);
  hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
  if (space >= 0) H5Sclose(space);
  *type = H5Aget_type(a);
  if (n != 1 || *type < 0) {
    kx_fail(KX_EIO, "attribute '%s' holds %lld values; expected a single one", name, (long long)n);
    if (*type >= 0) H5Tclose(*type);
    H5Aclose(a);
    *type = -1;
    return -1;
  }
  return a;
}

/* Copies s[0..n) to out without the padding: everything from the first NUL
 * (null-terminated or null-padded), and trailing spaces when space-padded. */
static int store_string(const char *name, const char *s, size_t n, int space_padded, char *out,
                        size_t cap) {
  const char *nul = memchr(s, '\0', n);
  if (nul) n = (size_t)(nul - s);
  if (space_padded)
    while (n && s[n - 1] == ' ') n--;
  if (n >= cap) return kx_fail(KX_EIO, "attribute '%s' is %zu bytes long; at most %zu expected", name, n, cap - 1);
  memcpy(out, s, n);
  out[n] = '\0';
  return 0;
}

int kx_h5_attr_string(hid_t obj, const char *name, char *out, size_t cap) {
  out[0] = '\0';
  hid_t ft;
  hid_t a = open_single(obj, name, &ft);
  if (a < 0) return KX_EIO;
  int rc = 0;
  if (H5Tget_class(ft) != H5T_STRING) {
    rc = kx_fail(KX_EIO, "attribute '%s' is not a string", name);
  } else {
    int space_padded = H5Tget_strpad(ft) == H5T_STR_SPACEPAD;
    /* memory type in the file's character set: HDF5 does not convert
     * between ASCII and UTF-8 */
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ft));
    if (H5Tis_variable_str(ft) > 0) {
      char *s = NULL;
      H5Tset_size(mt, H5T_VARIABLE);
      if (H5Aread(a, mt, &s) < 0) rc = kx_fail(KX_EIO, "cannot read attribute '%s'", name);
      else rc = store_string(name, s ? s : "", s ? strlen(s) : 0, space_padded, out, cap);
      if (s) H5free_memory(s);
    } else {
      size_t size = H5Tget_size(ft);
      char *s = size && size <= KX_H5_MAX_FIXED_STRING ? malloc(size) : NULL;
      if (!s) {
        rc = kx_fail(KX_EIO, "attribute '%s' is a fixed-length string of %zu bytes; at most %zu expected", name,
                     size, cap - 1);
      } else {
        /* the stored bytes as they are (same size and padding), then our own
         * padding removal: a string filling all `size` bytes keeps every
         * character */
        H5Tset_size(mt, size);
        H5Tset_strpad(mt, H5Tget_strpad(ft));
        if (H5Aread(a, mt, s) < 0) rc = kx_fail(KX_EIO, "cannot read attribute '%s'", name);
        else rc = store_string(name, s, size, space_padded, out, cap);
        free(s);
      }
    }
    H5Tclose(mt);
  }
  H5Tclose(ft);
  H5Aclose(a);
  return rc;
}

int kx_h5_attr_scalar(hid_t obj, const char *name, hid_t mem_type, void *out) {
  hid_t ft;
  hid_t a = open_single(obj, name, &ft);
  if (a < 0) return KX_EIO;
  H5T_class_t have = H5Tget_class(ft), want = H5Tget_class(mem_type);
  int ok = have == H5T_INTEGER || have == H5T_ENUM || (want == H5T_FLOAT && have == H5T_FLOAT);
  int rc = 0;
  if (!ok)
    rc = kx_fail(KX_EIO, "attribute '%s' must be %s", name, want == H5T_FLOAT ? "a number" : "an integer");
  else if (H5Aread(a, mem_type, out) < 0)
    rc = kx_fail(KX_EIO, "cannot read attribute '%s' as %s (out of range?)", name,
                 want == H5T_FLOAT ? "a number" : "an integer");
  H5Tclose(ft);
  H5Aclose(a);
  return rc;
}

unsigned long long kx_file_bytes(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (unsigned long long)st.st_size : 0;
}

int kx_check_memory(double bytes, const char *what) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  double have = pages > 0 && page > 0 ? (double)pages * (double)page : 0;
  if (have > 0 && bytes > have)
    return kx_fail(KX_ENOMEM, "%s would need %.3g GB, more than this machine's %.3g GB of memory", what,
                   bytes / 1e9, have / 1e9);
  return 0;
}

int kx_h5_check_stored(hid_t ds, const char *what, unsigned long long file_bytes) {
  hid_t space = H5Dget_space(ds), type = H5Dget_type(ds), dcpl = H5Dget_create_plist(ds);
  int rc = 0;
  if (space < 0 || type < 0 || dcpl < 0) {
    rc = kx_fail(KX_EIO, "%s: cannot read its shape, type or storage properties", what);
    goto out;
  }
  hssize_t n = H5Sget_simple_extent_npoints(space);
  size_t esize = H5Tget_size(type);
  double declared = (double)n * (double)esize;
  if (n < 0 || esize == 0) {
    rc = kx_fail(KX_EIO, "%s: invalid shape or element type", what);
    goto out;
  }
  if (H5Pget_nfilters(dcpl) > 0) {
    /* compressed: the file's size says nothing; a chunk is decompressed
     * whole, so it must fit in memory */
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t chunk[H5S_MAX_RANK];
    if (H5Pget_layout(dcpl) == H5D_CHUNKED && rank > 0 && rank <= H5S_MAX_RANK &&
        H5Pget_chunk(dcpl, rank, chunk) == rank) {
      double chunk_bytes = (double)esize;
      for (int r = 0; r < rank; r++) chunk_bytes *= (double)chunk[r];
      char chunk_what[256];
      snprintf(chunk_what, sizeof chunk_what, "%s: one compressed chunk", what);
      rc = kx_check_memory(chunk_bytes, chunk_what);
    }
    goto out;
  }
  double stored = (double)H5Dget_storage_size(ds);
  if (stored < declared) {
    rc = kx_fail(KX_EIO, "%s declares %.0f bytes but the file stores only %.0f of them (unwritten chunks, "
                 "or a damaged file)", what, declared, stored);
    goto out;
  }
  if (H5Pget_layout(dcpl) == H5D_CONTIGUOUS) {
    haddr_t at = H5Dget_offset(ds);
    if (at == HADDR_UNDEF || (double)at + declared > (double)file_bytes)
      rc = kx_fail(KX_EIO, "%s declares %.0f bytes that lie beyond the end of the file (%llu bytes; "
                   "truncated or damaged)", what, declared, file_bytes);
  } else if (stored > (double)file_bytes) {
    rc = kx_fail(KX_EIO, "%s claims %.0f bytes of storage in a file of %llu bytes (damaged)", what, stored,
                 file_bytes);
  }
out:
  if (dcpl >= 0) H5Pclose(dcpl);
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  return rc;
}

int kx_h5_write_scalar(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *value) {
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : H5Awrite(a, mem_type, value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(s);
  return e < 0 ? kx_fail(KX_EIO, "cannot write attribute %s", name) : 0;
}

hid_t kx_h5_create_in_memory(void) {
  kx_h5_quiet();
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  /* grow the image in 1 MiB steps; nothing is written to disk by HDF5 */
  hid_t f = fapl >= 0 && H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0
                ? H5Fcreate("kapprox-in-memory.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                : -1;
  if (fapl >= 0) H5Pclose(fapl);
  if (f < 0) kx_fail(KX_ENOMEM, "cannot create an HDF5 file in memory");
  return f;
}

int kx_h5_publish(hid_t file, const char *path) {
  ssize_t n = H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 ? H5Fget_file_image(file, NULL, 0) : -1;
  unsigned char *image = n > 0 ? malloc((size_t)n) : NULL;
  int rc = 0;
  if (!image || H5Fget_file_image(file, image, (size_t)n) != n)
    rc = kx_fail(KX_ENOMEM, "cannot assemble the HDF5 file for '%s' in memory (%lld bytes)", path, (long long)n);
  H5Fclose(file);
  kx_atomic_file af;
  if (!rc) rc = kx_atomic_open(&af, path);
  if (rc) {
    free(image);
    return rc;
  }
  errno = 0;
  if (fwrite(image, 1, (size_t)n, af.fp) != (size_t)n) {
    rc = kx_fail(KX_EIO, "writing '%s': %s (disk full, or over a file size limit?); nothing was replaced", path,
                 errno ? strerror(errno) : "short write");
    kx_atomic_abort(&af);
  } else {
    rc = kx_atomic_commit(&af);
  }
  free(image);
  return rc;
}
