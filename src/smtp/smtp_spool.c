/* Replacing a transaction's spool file (see smtp_spool_rewrite() in smtp_session.h): the
 * store addresses a message by its content once DATA ends, so what the checks on arrival
 * and a milter add or remove is written into a new file before it is handed over. The
 * unchanged parts are copied in the kernel. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
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

int smtp_spool_rewrite(struct smtp_session *s, int src, const void *head, size_t head_len,
                       const struct smtp_span *keep, size_t n)
{
	char *path = store_spool_path_dup(s->server->store);
	int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r =
	    out < 0 || (head_len > 0 && write(out, head, head_len) != (ssize_t)head_len) ? -1 : 0;
	uint64_t size = head_len;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (keep[i].len > 0)
			r = smtp_spool_copy(src, out, (off_t)keep[i].offset, keep[i].len);
		size += keep[i].len;
	}
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
	unlink(s->spool_path);
	free(s->spool_path);
	s->spool_path = path;
	s->spool_fd = out;
	s->body_size = size;
	return 0;
}
