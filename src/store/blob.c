/* Content-addressed message files (see blob.h): hashing with libsodium's streaming
 * SHA-256, fsync before rename, directory syncs, and the sweeps that remove orphans and
 * leftover spool files at store_open(). */
#include "store/blob.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_private.h"
#include "core/banned.h"

#define BLOB_READ_CHUNK 65536

static const char blob_hex_digits[] = "0123456789abcdef";

bool blob_name_valid(const char *s)
{
	size_t i;
	for (i = 0; i < BLOB_HEX_LEN; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[i] == '\0';
}

static unsigned blob_hex_value(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

unsigned blob_fanout_index(const char *hex)
{
	return blob_hex_value(hex[0]) * 16 + blob_hex_value(hex[1]);
}

/* Paths are short: store_open() refuses data directories that would not fit. */
static char *blob_printf_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *blob_printf_dup(const char *fmt, ...)
{
	struct buf b;
	va_list ap;
	buf_init(&b, PATH_MAX);
	va_start(ap, fmt);
	int ret = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	ASSERT(ret == 0);
	return b.data;
}

char *blob_path_dup(const char *messages_dir, const char *hex)
{
	return blob_printf_dup("%s/%.2s/%s", messages_dir, hex, hex);
}

static char *blob_fanout_dup(const char *messages_dir, unsigned index)
{
	return blob_printf_dup("%s/%c%c", messages_dir, blob_hex_digits[index >> 4],
	                       blob_hex_digits[index & 15]);
}

/* The hex digits of a SHA-256 digest. */
static void blob_hex(const unsigned char digest[crypto_hash_sha256_BYTES],
                     char hex_r[BLOB_HEX_LEN + 1])
{
	for (size_t i = 0; i < crypto_hash_sha256_BYTES; i++) {
		hex_r[2 * i] = blob_hex_digits[digest[i] >> 4];
		hex_r[2 * i + 1] = blob_hex_digits[digest[i] & 15];
	}
	hex_r[BLOB_HEX_LEN] = '\0';
}

/* Read fd to the end, hashing. */
static int blob_hash_fd(int fd, char hex_r[BLOB_HEX_LEN + 1], uint64_t *size_r,
                        const char **error_r)
{
	crypto_hash_sha256_state state;
	unsigned char digest[crypto_hash_sha256_BYTES];
	unsigned char *chunk = xmalloc(BLOB_READ_CHUNK);
	uint64_t size = 0;
	int ret = 0;

	crypto_hash_sha256_init(&state);
	for (;;) {
		ssize_t n = read(fd, chunk, BLOB_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = store_error_fmt("read spool file: %s", strerror(errno));
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		crypto_hash_sha256_update(&state, chunk, (unsigned long long)n);
		size += (uint64_t)n;
	}
	free(chunk);
	if (ret < 0)
		return -1;
	crypto_hash_sha256_final(&state, digest);
	blob_hex(digest, hex_r);
	*size_r = size;
	return 0;
}

/* Create the fan-out directory of hex when missing; *created_r tells whether we did. */
static int blob_make_fanout(const char *messages_dir, const char *hex, bool *created_r,
                            const char **error_r)
{
	char *dir = blob_fanout_dup(messages_dir, blob_fanout_index(hex));
	int ret = 0;
	*created_r = false;
	if (mkdir(dir, 0700) == 0)
		*created_r = true;
	else if (errno != EEXIST) {
		*error_r = store_error_fmt("mkdir %s: %s", dir, strerror(errno));
		ret = -1;
	}
	free(dir);
	return ret;
}

int blob_store(const char *messages_dir, const char *spool_path, char hex_r[BLOB_HEX_LEN + 1],
               uint64_t *size_r, bool *dir_created_r, const char **error_r)
{
	int fd = open(spool_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = store_error_fmt("open spool file %s: %s", spool_path, strerror(errno));
		return -1;
	}
	if (blob_hash_fd(fd, hex_r, size_r, error_r) < 0 ||
	    blob_make_fanout(messages_dir, hex_r, dir_created_r, error_r) < 0) {
		close(fd);
		return -1;
	}

	char *path = blob_path_dup(messages_dir, hex_r);
	struct stat st;
	int ret = 0;
	if (lstat(path, &st) == 0) {
		/* Same bytes already stored: their data was synced before their rename, and the
		 * caller syncs the fan-out directory of this batch, so the name is durable too. */
		if (unlink(spool_path) < 0)
			log_warn("store: unlink duplicate spool file %s: %s", spool_path,
			         strerror(errno));
	} else if (errno != ENOENT) {
		*error_r = store_error_fmt("stat %s: %s", path, strerror(errno));
		ret = -1;
	} else if (!blob_unsafe_nosync() && fsync(fd) < 0) {
		/* The bytes must be on disk before the name points at them. */
		*error_r = store_error_fmt("fsync spool file %s: %s", spool_path, strerror(errno));
		ret = -1;
	} else if (rename(spool_path, path) < 0) {
		*error_r =
		    store_error_fmt("rename %s to %s: %s", spool_path, path, strerror(errno));
		ret = -1;
	}
	close(fd);
	free(path);
	return ret;
}

int blob_read_small(const char *spool_path, uint64_t max, unsigned char **data_r,
                    char hex_r[BLOB_HEX_LEN + 1], uint64_t *size_r, const char **error_r)
{
	int fd = open(spool_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		*error_r = store_error_fmt("open spool file %s: %s", spool_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return 0;
	}
	size_t size = (size_t)st.st_size, got = 0;
	unsigned char *data = xmalloc(size + 1);
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = n == 0 ? store_error_fmt("spool file %s shrank", spool_path)
			                  : store_error_fmt("read spool file %s: %s", spool_path,
			                                    strerror(errno));
			close(fd);
			free(data);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	unsigned char digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(digest, data, size);
	blob_hex(digest, hex_r);
	*data_r = data;
	*size_r = size;
	return 1;
}

int blob_memfd(const void *data, size_t size, const char **error_r)
{
	int fd = memfd_create("posthorn-message", MFD_CLOEXEC);
	size_t done = 0;
	if (fd < 0) {
		*error_r = store_error_fmt("memfd_create: %s", strerror(errno));
		return -1;
	}
	while (done < size) {
		ssize_t n = write(fd, (const unsigned char *)data + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = store_error_fmt("write to memfd: %s", strerror(errno));
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		*error_r = store_error_fmt("lseek memfd: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int blob_tmpfile(const char *dir, const char **error_r)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) {
		if (fd < 0)
			*error_r =
			    store_error_fmt("temporary file in %s: %s", dir, strerror(errno));
		return fd;
	}
	/* A file system without O_TMPFILE: a named file, unlinked at once. */
	char *path = blob_printf_dup("%s/body.XXXXXX", dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
		*error_r = store_error_fmt("temporary file in %s: %s", dir, strerror(errno));
	else
		unlink(path);
	free(path);
	return fd;
}

int blob_hash_file(const char *path, char hex_r[BLOB_HEX_LEN + 1], uint64_t *size_r,
                   const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = store_error_fmt("open spool file %s: %s", path, strerror(errno));
		return -1;
	}
	int ret = blob_hash_fd(fd, hex_r, size_r, error_r);
	close(fd);
	return ret;
}

int blob_sync_dir(const char *path, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = store_error_fmt("open directory %s: %s", path, strerror(errno));
		return -1;
	}
	int ret = 0;
	if (!blob_unsafe_nosync() && fsync(fd) < 0) {
		*error_r = store_error_fmt("fsync directory %s: %s", path, strerror(errno));
		ret = -1;
	}
	close(fd);
	return ret;
}

int blob_sync_fanout(const char *messages_dir, unsigned index, const char **error_r)
{
	char *dir = blob_fanout_dup(messages_dir, index);
	int ret = blob_sync_dir(dir, error_r);
	free(dir);
	return ret;
}

bool blob_unsafe_nosync(void)
{
#ifdef POSTHORN_TEST_BUILD
	const char *v = getenv("POSTHORN_TEST_UNSAFE_NOSYNC");
	return v != NULL && strcmp(v, "1") == 0;
#else
	return false;
#endif
}

int blob_open(const char *messages_dir, const char *hex, int *fd_r, uint64_t *size_r)
{
	char *path = blob_path_dup(messages_dir, hex);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = 1;
	struct stat st;
	if (fd < 0) {
		if (errno != ENOENT)
			log_error("store: open %s: %s", path, strerror(errno));
		ret = errno == ENOENT ? 0 : -1;
	} else if (fstat(fd, &st) < 0) {
		log_error("store: fstat %s: %s", path, strerror(errno));
		close(fd);
		ret = -1;
	} else {
		*fd_r = fd;
		*size_r = (uint64_t)st.st_size;
	}
	free(path);
	return ret;
}

int blob_unlink(const char *messages_dir, const char *hex)
{
	char *path = blob_path_dup(messages_dir, hex);
	int ret = 0;
	if (unlink(path) < 0 && errno != ENOENT) {
		log_error("store: unlink %s: %s", path, strerror(errno));
		ret = -1;
	}
	free(path);
	return ret;
}

/* One fan-out directory of blob_sweep(). Returns files removed or -1. */
static int blob_sweep_fanout(const char *messages_dir, const char *name,
                             int (*keep)(void *ctx, const char *hex), void *ctx)
{
	char *dir = blob_printf_dup("%s/%s", messages_dir, name);
	DIR *d = opendir(dir);
	int removed = 0;
	struct dirent *de;
	if (d == NULL) {
		log_error("store: opendir %s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	while (removed >= 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!blob_name_valid(de->d_name) || strncmp(de->d_name, name, 2) != 0) {
			log_warn("store: unexpected file %s/%s left alone", dir, de->d_name);
			continue;
		}
		int k = keep(ctx, de->d_name);
		if (k < 0)
			removed = -1;
		else if (k == 0 && unlinkat(dirfd(d), de->d_name, 0) == 0) {
			log_info("store: removed orphan message file %s", de->d_name);
			removed++;
		} else if (k == 0)
			log_error("store: unlink %s/%s: %s", dir, de->d_name, strerror(errno));
	}
	closedir(d);
	free(dir);
	return removed;
}

static bool blob_fanout_name_valid(const char *s)
{
	return strlen(s) == 2 && strchr(blob_hex_digits, s[0]) != NULL &&
	       strchr(blob_hex_digits, s[1]) != NULL;
}

int blob_sweep(const char *messages_dir, int (*keep)(void *ctx, const char *hex), void *ctx)
{
	DIR *d = opendir(messages_dir);
	struct dirent *de;
	int total = 0;
	if (d == NULL) {
		log_error("store: opendir %s: %s", messages_dir, strerror(errno));
		return -1;
	}
	while (total >= 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!blob_fanout_name_valid(de->d_name)) {
			log_warn("store: unexpected entry %s/%s left alone", messages_dir,
			         de->d_name);
			continue;
		}
		int n = blob_sweep_fanout(messages_dir, de->d_name, keep, ctx);
		total = n < 0 ? -1 : total + n;
	}
	closedir(d);
	return total;
}

int blob_clear_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int removed = 0;
	if (d == NULL) {
		log_error("store: opendir %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode)) {
			log_warn("store: unexpected directory %s/%s left alone", dir, de->d_name);
			continue;
		}
		if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
			log_error("store: unlink %s/%s: %s", dir, de->d_name, strerror(errno));
			removed = -1;
			break;
		}
		removed++;
	}
	closedir(d);
	return removed;
}
