/* The octets an IMAP URL names (RFC 5092 §5: a message, a section of it, a partial range),
 * for CATENATE (RFC 4469), URLFETCH (RFC 4467) and BURL (RFC 4468): built on the public
 * reads (the mailbox's status, store_message_open()) and the MIME parser. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/arena.h"
#include "mime/mime.h"
#include "store/store.h"
#include "core/banned.h"

/* Split "1.2.HEADER" into the part numbers ("1.2") and what follows ("HEADER"); the text
 * after the numbers must be HEADER, TEXT or MIME (MIME only after a number). false when
 * the section is none of RFC 9051 §6.4.5's forms this supports. */
static bool store_url_section_split(struct arena *a, const char *section, const char **nums_r,
                                    const char **kind_r)
{
	const char *p = section;
	const char *last = section; /* the end of the numbers */
	while (*p >= '1' && *p <= '9') {
		while (*p >= '0' && *p <= '9')
			p++;
		last = p;
		if (*p != '.')
			break;
		p++;
	}
	*nums_r = arena_strndup(a, section, (size_t)(last - section));
	const char *kind = *last == '.' ? last + 1 : last;
	if (*last == '.' && kind[0] == '\0')
		return false;
	*kind_r = kind;
	if (kind[0] == '\0')
		return last != section;
	if (strcmp(kind, "MIME") == 0)
		return last != section;
	return strcmp(kind, "HEADER") == 0 || strcmp(kind, "TEXT") == 0;
}

/* The range of section in the mapped message; false when it does not exist. */
static bool store_url_range(const unsigned char *data, size_t size, const char *section,
                            uint64_t *off_r, uint64_t *len_r)
{
	struct arena *a = arena_new(16384);
	const char *nums, *kind;
	bool ok = store_url_section_split(a, section, &nums, &kind);
	struct mime_part *root = NULL;
	if (ok && mime_parse(a, data, size, NULL, &root) < -1) /* -1: a limit, still usable */
		ok = false;
	const struct mime_part *p =
	    ok ? (nums[0] != '\0' ? mime_part_find(root, nums) : root) : NULL;
	ok = p != NULL;
	if (ok && (kind[0] == '\0' || strcmp(kind, "MIME") == 0)) {
		*off_r = kind[0] == '\0' ? p->body_start : p->header_start;
		*len_r = kind[0] == '\0' ? p->body_len : p->header_len;
	} else if (ok) {
		/* HEADER/TEXT of the message itself or of a message/rfc822 part */
		const struct mime_part *m = nums[0] == '\0'                ? root
		                            : p->kind == MIME_KIND_MESSAGE ? p->message
		                                                           : NULL;
		ok = m != NULL;
		if (ok) {
			*off_r = strcmp(kind, "HEADER") == 0 ? m->header_start : m->body_start;
			*len_r = strcmp(kind, "HEADER") == 0 ? m->header_len : m->body_len;
		}
	}
	arena_free(&a);
	return ok;
}

int store_message_section(struct store *store, uint64_t account_id, const char *mailbox,
                          uint32_t uidvalidity, uint32_t uid, const char *section, bool partial,
                          uint64_t partial_off, uint64_t partial_len, int *fd_r, uint64_t *off_r,
                          uint64_t *len_r)
{
	struct store_mailbox_status st;
	int r = store_mailbox_changes(store, account_id, mailbox, UINT64_MAX >> 1, NULL, NULL, NULL,
	                              &st);
	if (r != 1)
		return r;
	if (uidvalidity != 0 && st.uidvalidity != uidvalidity)
		return 0;
	int fd;
	uint64_t size;
	r = store_message_open(store, account_id, mailbox, uid, &fd, &size);
	if (r != 1)
		return r;
	uint64_t off = 0, len = size;
	if (section != NULL && section[0] != '\0') {
		void *map =
		    size > 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
		if (map == MAP_FAILED) {
			close(fd);
			return size > 0 ? -1 : 0;
		}
		bool found = store_url_range(map, (size_t)size, section, &off, &len);
		munmap(map, (size_t)size);
		if (!found) {
			close(fd);
			return 0;
		}
	}
	if (partial) { /* RFC 5092 §5: a window over the section's octets */
		uint64_t skip = partial_off < len ? partial_off : len;
		off += skip;
		len -= skip;
		if (partial_len != 0 && partial_len < len)
			len = partial_len;
	}
	*fd_r = fd;
	*off_r = off;
	*len_r = len;
	return 1;
}
