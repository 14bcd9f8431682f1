/* Crash-safe append-only record files: the journal of a sweep.
 *
 * A journal is a header block (text lines ending with the line "records:")
 * followed by one line per record:  <payload> TAB <crc32 of payload, 8 hex>.
 * Every record is appended with a single write() and made durable with
 * fdatasync() before the next one, so after Ctrl-C, kill -9 or a power loss
 * the file holds every finished record plus at most one torn last line.  A
 * torn or damaged line fails its checksum (or lacks its newline) and is
 * dropped when the journal is read again; the work it stood for is simply
 * redone.  An exclusive lock keeps two processes from appending to the same
 * journal. */
#ifndef KX_JOURNAL_H
#define KX_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  char *header;     /* the header block including its final "records:\n" (NULL: none) */
  char **records;   /* payloads of the valid records, in file order */
  size_t n, cap;
  size_t dropped;   /* damaged or torn lines skipped */
  size_t bytes;     /* size of the file as read */
  char start[32];   /* its first bytes (to recognise a foreign file without a header) */
  int damaged_header; /* a complete header block that is not text (header stays NULL) */
} kx_journal_contents;

typedef struct {
  int fd;
  char *path;
} kx_journal;

uint32_t kx_crc32(const void *data, size_t len);

/* Reads a journal without locking it (merge, inspection).  A missing file
 * is KX_EIO with a message; a file without a complete header gives
 * header == NULL. */
int kx_journal_read(const char *path, kx_journal_contents *c);
void kx_journal_contents_free(kx_journal_contents *c);

/* Opens (creating if absent) and locks a journal for appending and reads
 * what it holds into *c.  With `discard` the old contents are thrown away
 * first.  The caller then checks c->header: kx_journal_start writes the
 * header into an empty journal, kx_journal_repair rewrites a journal whose
 * records had damaged lines. */
int kx_journal_open(kx_journal *j, const char *path, int discard, kx_journal_contents *c);
int kx_journal_start(kx_journal *j, const char *header);
int kx_journal_repair(kx_journal *j, const kx_journal_contents *c);

/* Appends one record durably (write + fdatasync).  Not thread-safe:
 * callers serialise.  kx_journal_write_record and kx_journal_sync are the
 * two halves, for callers that serialise only the write and let several
 * threads wait for the disk at once (a record is durable once the sync
 * that follows its write returns). */
int kx_journal_append(kx_journal *j, const char *payload);
int kx_journal_write_record(kx_journal *j, const char *payload);
int kx_journal_sync(kx_journal *j);
void kx_journal_close(kx_journal *j);

/* Writes a whole journal atomically (temporary file + rename): merge's
 * output; kx_journal_fwrite writes it to an open stream. */
int kx_journal_write_all(const char *path, const char *header, char *const *records, size_t n);
void kx_journal_fwrite(FILE *fp, const char *header, char *const *records, size_t n);

#endif
