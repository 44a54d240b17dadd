/* libFuzzer target for imap/imap_search and imap/imap_search_doc: the input is a SEARCH
 * command line (up to the first LF, fed to the IMAP parser after "t SEARCH ") followed by a
 * message. When the criteria parse, the message is matched with and without its octets,
 * whole and cut to its first half, and the contract is checked: 0 or 1 with the octets, the
 * same answer without them whenever that one is not -1, and -1 only when a key needs them.
 * The message itself also goes through the text reader directly. And the search index's
 * contract: with each indexable BODY/TEXT key answered from imap_search_doc_index()'s texts
 * (as the store does: the needle in hdr or body), and each header key from the fields
 * kept in hdr (imap_search_hdr_add(), given only when hdr holds the prefilter), the match
 * is the same as from the octets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "imap/imap_parser.h"
#include "imap/imap_search.h"
#include "imap/imap_search_doc.h"
#include "mime/mime.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_match(const struct imap_search *search, const uint8_t *msg, size_t len,
                       uint32_t seq)
{
	static const uint32_t saved[] = {2, 3, 7};
	struct imap_search_context ctx = {
	    .count = 8, .max_uid = 9, .saved = saved, .saved_count = 3};
	struct imap_search_msg m = {
	    .seq = seq,
	    .uid = seq + 1,
	    .size = len,
	    .internal_date = (int64_t)len * 86400 - 43200,
	    .flags = seq & 0x1F,
	    .keywords = (seq & 1) ? "$Work Later" : NULL,
	};
	int quick = imap_search_match(search, &ctx, &m, NULL, 0);
	int full = imap_search_match(search, &ctx, &m, msg, len);
	ASSERT(quick >= -1 && quick <= 1);
	ASSERT(full == 0 || full == 1);
	if (quick >= 0)
		ASSERT(quick == full);
	if (search->needs == 0)
		ASSERT(quick >= 0);
	char *hdr, *body;
	if ((search->texts == NULL && search->hdrs == NULL) ||
	    imap_search_doc_index(msg, len, 1 << 24, &hdr, &body) != 1)
		return;
	struct imap_search *s = (struct imap_search *)search;
	uint32_t uid = m.uid;
	/* header keys from the stored fields, given only when they hold the prefilter */
	for (struct imap_search_hdr *h = s->hdrs; h != NULL; h = h->next) {
		if (h->prefilter == NULL || strstr(hdr, h->prefilter) != NULL)
			imap_search_hdr_add(h, uid, hdr, strlen(hdr));
		h->indexed = !h->broken;
	}
	int quick_hdr = imap_search_match(search, &ctx, &m, NULL, 0);
	if (quick_hdr >= 0)
		ASSERT(quick_hdr == full);
	ASSERT(imap_search_match(search, &ctx, &m, msg, len) == full);
	for (struct imap_search_text *t = s->texts; t != NULL; t = t->next) {
		bool in = strstr(body, t->needle) != NULL ||
		          (!t->body_only && strstr(hdr, t->needle) != NULL);
		t->indexed = true;
		t->uids = in ? &uid : NULL;
		t->count = in ? 1 : 0;
	}
	ASSERT(imap_search_match(search, &ctx, &m, msg, len) == full);
	for (struct imap_search_text *t = s->texts; t != NULL; t = t->next) {
		t->indexed = false;
		t->uids = NULL;
		t->count = 0;
	}
	for (struct imap_search_hdr *h = s->hdrs; h != NULL; h = h->next) {
		free(h->uids);
		h->uids = NULL;
		h->count = h->cap = 0;
		h->indexed = h->broken = false;
	}
	free(hdr);
	free(body);
}

static void fuzz_doc(const uint8_t *msg, size_t len)
{
	struct imap_search_doc doc;
	imap_search_doc_init(&doc, msg, len);
	imap_search_doc_header(&doc);
	imap_search_doc_body(&doc);
	for (size_t i = 0; i < doc.fields.count; i++) {
		const struct imap_search_doc_text *t = &doc.fields.v[i];
		ASSERT(t->name != NULL && t->value <= t->len && t->s[t->len] == '\0');
	}
	for (size_t i = 0; i < doc.body.count; i++)
		ASSERT(doc.body.v[i].s[doc.body.v[i].len] == '\0');
	static const struct mime_limits lim = MIME_LIMITS_DEFAULT_INIT;
	ASSERT(doc.parts <= lim.parts_max);
	imap_search_doc_deinit(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t crit_len = nl != NULL ? (size_t)(nl - data) : size;
	const uint8_t *msg = nl != NULL ? nl + 1 : data + size;
	size_t msg_len = size - (size_t)(msg - data);
	fuzz_doc(msg, msg_len);
	if (crit_len > 1000)
		return 0;
	char line[1024 + 16];
	memcpy(line, "t SEARCH ", 9);
	memcpy(line + 9, data, crit_len);
	struct arena *arena = arena_new(4096);
	struct imap_parser *parser = imap_parser_new(arena, NULL);
	struct imap_literal lit;
	const char *error = NULL;
	if (imap_parser_feed_line(parser, line, 9 + crit_len, &lit, &error) == 1) {
		struct imap_search *search = NULL;
		if (imap_search_parse(arena, imap_parser_args(parser), &search, &error) == 0) {
			ASSERT(search != NULL && error == NULL);
			(void)imap_search_charset_supported(
			    search->charset != NULL ? search->charset : "");
			fuzz_match(search, msg, msg_len, (uint32_t)(msg_len % 8) + 1);
			fuzz_match(search, msg, msg_len / 2, (uint32_t)(crit_len % 8) + 1);
		} else {
			ASSERT(search == NULL && error != NULL);
		}
	}
	imap_parser_free(&parser);
	arena_free(&arena);
	return 0;
}
