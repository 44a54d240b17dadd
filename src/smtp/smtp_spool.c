/* The spool of a transaction: appending the message, and replacing the file (see
 * smtp_spool_rewrite() in smtp_session.h). The store addresses a message by its content once
 * DATA ends, so what the checks on arrival and a milter add or remove is written into a new
 * file before it is handed over; the unchanged parts are copied in the kernel. With the
 * checks on, a message that fits SMTP_SPOOL_MEM_MAX stays in memory until its
 * Authentication-Results field is known, and its one file is written then: no second file,
 * no copy, no mapping. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "smtp/smtp_session.h"
#include "core/banned.h"

/* Copy len octets at off of in to the end of out, in the kernel (copy_file_range); a file
 * system that cannot is copied through a buffer. 0 or -1. */
static int smtp_spool_copy(int in, int out, off_t off, size_t len)
{
	while (len > 0) {
		off_t o = off;
		ssize_t n = copy_file_range(in, &o, out, NULL, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
			char chunk[65536];
			size_t want = len < sizeof(chunk) ? len : sizeof(chunk);
			n = pread(in, chunk, want, off);
			if (n > 0 && write(out, chunk, (size_t)n) != n)
				return -1;
		}
		if (n <= 0)
			return -1;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

/* All of iov[0..cnt) to fd (iov is used up). 0 or -1. */
static int smtp_spool_writev(int fd, struct iovec *iov, size_t cnt)
{
	while (cnt > 0) {
		ssize_t w = writev(fd, iov, cnt > IOV_MAX ? IOV_MAX : (int)cnt);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		size_t left = (size_t)w;
		while (cnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* The pieces of the new file into out: head, then the spans of the old file (src) or of
 * spool_mem. 0 or -1. */
static int smtp_spool_fill(struct smtp_session *s, int out, int src, const void *head,
                           size_t head_len, const struct smtp_span *keep, size_t n)
{
	if (s->spool_in_mem) {
		struct iovec *iov = xcalloc(n + 1, sizeof(*iov));
		iov[0] = (struct iovec){(void *)head, head_len};
		for (size_t i = 0; i < n; i++)
			iov[i + 1] =
			    (struct iovec){s->spool_mem.data + keep[i].offset, keep[i].len};
		int r = smtp_spool_writev(out, iov, n + 1);
		free(iov);
		return r;
	}
	if (head_len > 0 && write(out, head, head_len) != (ssize_t)head_len)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (keep[i].len > 0 &&
		    smtp_spool_copy(src, out, (off_t)keep[i].offset, keep[i].len) != 0)
			return -1;
	}
	return 0;
}

int smtp_spool_rewrite(struct smtp_session *s, int src, const void *head, size_t head_len,
                       const struct smtp_span *keep, size_t n)
{
	char *path = store_spool_path_dup(s->server->store);
	int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = out < 0 ? -1 : smtp_spool_fill(s, out, src, head, head_len, keep, n);
	uint64_t size = head_len;
	for (size_t i = 0; i < n; i++)
		size += keep[i].len;
	if (r != 0) {
		log_error("session=%s proto=smtp event=spool-rewrite path=%s error=%s",
		          conn_id(s->conn), path, strerror(errno));
		if (out >= 0)
			close(out);
		unlink(path);
		free(path);
		return -1;
	}
	if (s->spool_fd >= 0)
		close(s->spool_fd);
	if (s->spool_path != NULL)
		unlink(s->spool_path);
	free(s->spool_path);
	buf_free(&s->spool_mem);
	s->spool_in_mem = false;
	s->spool_path = path;
	s->spool_fd = out;
	s->body_size = size;
	return 0;
}

int smtp_spool_spill(struct smtp_session *s)
{
	if (!s->spool_in_mem)
		return 0;
	struct smtp_span all = {0, s->spool_mem.len};
	uint64_t size = s->body_size; /* smtp_body_write() counts what it appends first */
	int r = smtp_spool_rewrite(s, -1, NULL, 0, &all, 1);
	s->body_size = size;
	return r;
}

int smtp_spool_append(struct smtp_session *s, const void *p, size_t n)
{
	if (s->spool_in_mem) {
		if (n <= s->spool_mem.max - s->spool_mem.len)
			return buf_append(&s->spool_mem, p, n);
		if (smtp_spool_spill(s) != 0)
			return -1;
	}
	const unsigned char *q = p;
	while (n > 0) {
		ssize_t w = write(s->spool_fd, q, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("session=%s proto=smtp event=spool-write error=%s",
			          conn_id(s->conn), strerror(errno));
			return -1;
		}
		q += w;
		n -= (size_t)w;
	}
	return 0;
}
