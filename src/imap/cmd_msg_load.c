/* A message's octets for SEARCH, SORT and THREAD: all of them mapped, or only its header
 * section read (what header keys and sort keys need; on PostgreSQL the store opened only
 * its first chunk), and the view entry as imap_search_match() takes it. */
#include "imap/imap_commands.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "imap/imap_search.h"
#include "core/banned.h"

/* Octets read at a time while looking for the end of a header section. */
#define CMD_MSG_HEADER_CHUNK 16384

/* Does p[0, len) hold the blank line that ends a header section, looking from `from` on? */
static bool cmd_msg_header_complete(const unsigned char *p, size_t len, size_t from)
{
	for (size_t i = from; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (i == 0 || (i + 1 < len && p[i + 1] == '\n') ||
		    (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n'))
			return true;
	}
	return false;
}

void cmd_msg_load(int fd, uint64_t size, bool header_only, unsigned char **data_r, size_t *len_r,
                  bool *mapped_r)
{
	*mapped_r = false;
	if (!header_only && size > 0) {
		void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map != MAP_FAILED) {
			close(fd);
			*data_r = map;
			*len_r = (size_t)size;
			*mapped_r = true;
			return;
		}
	}
	unsigned char *data = xmalloc((size_t)size + 1);
	size_t got = 0;
	while (got < size) {
		size_t want = (size_t)size - got;
		if (header_only && want > CMD_MSG_HEADER_CHUNK)
			want = CMD_MSG_HEADER_CHUNK;
		ssize_t n = pread(fd, data + got, want, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		size_t from = got > 3 ? got - 3 : 0;
		got += (size_t)n;
		if (header_only && cmd_msg_header_complete(data, got, from))
			break;
	}
	close(fd);
	*data_r = data;
	*len_r = got;
}

void cmd_msg_unload(unsigned char *data, size_t len, bool mapped)
{
	if (mapped)
		munmap(data, len);
	else
		free(data);
}

struct imap_search_msg cmd_msg_search_msg(const struct imap_session *s, uint32_t i)
{
	const struct imap_msg *m = &s->msgs[i];
	return (struct imap_search_msg){
	    .seq = i + 1,
	    .uid = m->uid,
	    .size = m->size,
	    .internal_date = m->date,
	    .flags = m->flags | (m->recent ? IMAP_SEARCH_FLAG_RECENT : 0u),
	    .keywords = m->keywords,
	    .modseq = m->modseq,
	    .save_date = m->save_date,
	};
}
