/* Small file-system helpers every writer of results needs. */
#ifndef KX_FS_H
#define KX_FS_H

/* mkdir -p: creates `path` and each missing folder above it (mode 0755,
 * less the umask).  0 when `path` is a folder at the end, or KX_EIO with a
 * message naming the folder that could not be made. */
int kx_mkdir_p(const char *path);

/* 1 if both paths exist and name the same file (device and inode), else 0. */
int kx_same_file(const char *a, const char *b);

/* 1 if `path` exists (as anything, a dangling link excepted), else 0. */
int kx_path_exists(const char *path);

#endif
