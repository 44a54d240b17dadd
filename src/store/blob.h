/* Content-addressed message files: messages/ab/<64 hex digits of SHA-256>. A file is
 * written once (the spool file is fsynced and renamed into place), never changed, and
 * removed only when no message row references it. Mailbox names never become paths here:
 * only hashes do. */
#ifndef POSTHORN_STORE_BLOB_H
#define POSTHORN_STORE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hex digits of a content address (SHA-256). */
#define BLOB_HEX_LEN 64
/* Number of fan-out directories (two hex digits). */
#define BLOB_FANOUT_COUNT 256

/* true when s is exactly BLOB_HEX_LEN lower-case hex digits. */
bool blob_name_valid(const char *s);
/* messages_dir/ab/<hex>, malloc'd. */
char *blob_path_dup(const char *messages_dir, const char *hex);
/* Index 0..255 of hex's fan-out directory ("ab" -> 0xab). hex must be valid. */
unsigned blob_fanout_index(const char *hex);

/* Hash spool_path, then fsync and rename it to its content address (or unlink it when a
 * file with that address already exists: the body is stored once). Fills hex_r and
 * size_r; *dir_created_r is set when the fan-out directory had to be created (then
 * messages_dir itself needs a sync). The fan-out directory is NOT synced here: call
 * blob_sync_fanout() once per directory for a batch. On -1 (*error_r) the spool file is
 * left where it was. */
int blob_store(const char *messages_dir, const char *spool_path, char hex_r[BLOB_HEX_LEN + 1],
               uint64_t *size_r, bool *dir_created_r, const char **error_r)
    __attribute__((warn_unused_result));
/* Small bodies live in the database instead (the store's inline limit): read a spool file
 * of at most max octets into memory and hash it. 1 with *data_r (malloc'd), hex_r and
 * *size_r; 0 when the file is larger (nothing read); -1 with *error_r. The spool file
 * stays either way. */
int blob_read_small(const char *spool_path, uint64_t max, unsigned char **data_r,
                    char hex_r[BLOB_HEX_LEN + 1], uint64_t *size_r, const char **error_r);
/* An anonymous in-memory file holding a copy of data, at offset 0: its fd (the caller
 * closes it), or -1 with *error_r. How a body stored in the database is handed out. */
int blob_memfd(const void *data, size_t size, const char **error_r);
/* A new file under dir that has no name (O_TMPFILE, else a name unlinked at once): its
 * fd, or -1 with *error_r. Where a copy of a body kept in chunk rows is assembled. */
int blob_tmpfile(const char *dir, const char **error_r);
/* Hash the file at path: 0 with hex_r and *size_r, or -1 with *error_r. */
int blob_hash_file(const char *path, char hex_r[BLOB_HEX_LEN + 1], uint64_t *size_r,
                   const char **error_r);
/* fsync the fan-out directory with this index. 0, or -1 with *error_r. */
int blob_sync_fanout(const char *messages_dir, unsigned index, const char **error_r)
    __attribute__((warn_unused_result));
/* fsync a directory. 0, or -1 with *error_r. */
int blob_sync_dir(const char *path, const char **error_r) __attribute__((warn_unused_result));

/* true in a test build (compiled with -DPOSTHORN_TEST_BUILD, as build/asan is) when the
 * environment has POSTHORN_TEST_UNSAFE_NOSYNC=1: then no fsync is made (message files,
 * directories, SQLite synchronous=OFF) and acknowledged mail is lost at a power cut. Only
 * the power-loss tests' negative control sets it (tests/durability/powerloss.py); a release
 * build has no such switch. */
bool blob_unsafe_nosync(void);

/* Open a stored file read-only: 1 with *fd_r (caller closes) and *size_r, 0 when absent,
 * -1 error. */
int blob_open(const char *messages_dir, const char *hex, int *fd_r, uint64_t *size_r);
/* Remove a stored file. 0 (also when it was already gone), -1 error (logged). */
int blob_unlink(const char *messages_dir, const char *hex);

/* Walk messages_dir/xx/ and unlink every content-addressed file for which keep() returns
 * 0 (keep() returns 1 to keep, -1 to abort the walk). Names that are not content
 * addresses are left alone with a warning. Returns the number removed, or -1. */
int blob_sweep(const char *messages_dir, int (*keep)(void *ctx, const char *hex), void *ctx);
/* Unlink every non-directory entry directly inside dir (leftover spool files). Returns the
 * number removed, or -1. */
int blob_clear_dir(const char *dir);

#endif
