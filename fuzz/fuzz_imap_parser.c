/* libFuzzer target for imap/imap_parser, imap/imap_seqset and imap/imap_notify: the input is a
 * client's byte stream. It is cut into lines at CRLF and fed like a server does; after a literal
 * announcement the literal's octets are taken from the input that follows (fed in pieces,
 * or consumed "externally" when too large or when the first input byte says so). Every
 * result is checked against the header's contract, and every atom is also run through the
 * sequence-set parser. Small limits make every limit reachable. */
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "imap/imap_notify.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_DEPTH_MAX 8

static void fuzz_check_seqset(struct arena *arena, const char *s)
{
	struct imap_seqset *set;
	const char *error = NULL;
	if (imap_seqset_parse(arena, s, &set, &error) < 0) {
		ASSERT(error != NULL);
		return;
	}
	ASSERT(error == NULL);
	for (size_t i = 0; i < set->count; i++) {
		ASSERT(set->ranges[i].lo >= 1 && set->ranges[i].lo <= set->ranges[i].hi);
		if (i > 0)
			ASSERT(set->ranges[i].lo > set->ranges[i - 1].hi + 1);
	}
	uint32_t star = set->count > 0 ? set->ranges[0].hi : 7;
	struct imap_seqset_iter iter;
	uint32_t v, last = 0, count = 0;
	imap_seqset_iterate(&iter, set, star, 200);
	while (imap_seqset_next(&iter, &v)) {
		ASSERT(v > last && v <= 200);
		ASSERT(imap_seqset_contains(set, v, star));
		last = v;
		count++;
	}
	ASSERT(count <= 200);
	ASSERT(!set->saved || count == 0);
}

/* Walk an argument list and check every entry against the contract. */
static void fuzz_check_args(struct arena *arena, const struct imap_arg *args, unsigned depth)
{
	ASSERT(depth <= FUZZ_DEPTH_MAX);
	for (; args->type != IMAP_ARG_EOL; args++) {
		switch (args->type) {
		case IMAP_ARG_NIL:
			ASSERT(args->len == 3 && args->str != NULL);
			break;
		case IMAP_ARG_ATOM:
			ASSERT(args->len > 0 && strlen(args->str) == args->len);
			for (size_t i = 0; i < args->len; i++) {
				unsigned char c = (unsigned char)args->str[i];
				ASSERT(c >= 0x20 && c < 0x7f);
			}
			fuzz_check_seqset(arena, args->str);
			break;
		case IMAP_ARG_STRING:
			ASSERT(strlen(args->str) == args->len);
			ASSERT(memchr(args->str, '\r', args->len) == NULL);
			ASSERT(memchr(args->str, '\n', args->len) == NULL);
			break;
		case IMAP_ARG_LITERAL:
			ASSERT(args->str != NULL && args->str[args->len] == '\0');
			if (!args->literal8)
				ASSERT(memchr(args->str, '\0', args->len) == NULL);
			break;
		case IMAP_ARG_LITERAL_EXTERNAL:
			ASSERT(args->str == NULL);
			break;
		case IMAP_ARG_LIST:
			ASSERT(args->list != NULL && args->str == NULL);
			fuzz_check_args(arena, args->list, depth + 1);
			break;
		default:
			ASSERT(!"unknown argument type");
		}
	}
}

static void fuzz_check_complete(struct imap_parser *parser, struct arena *arena)
{
	const char *tag = imap_parser_tag(parser), *command = imap_parser_command(parser);
	ASSERT(tag != NULL && tag[0] != '\0' && strchr(tag, '+') == NULL);
	ASSERT(command != NULL && command[0] != '\0');
	for (const char *c = command; *c != '\0'; c++)
		ASSERT(!(*c >= 'a' && *c <= 'z'));
	const struct imap_arg *args = imap_parser_args(parser);
	ASSERT(args != NULL && imap_parser_args_so_far(parser) == args);
	fuzz_check_args(arena, args, 0);
	/* NOTIFY's arguments (imap_notify.h): every command's, so any tree reaches it. */
	struct imap_notify_spec spec;
	const char *error = NULL;
	if (imap_notify_parse(arena, args, &spec, &error) < 0) {
		ASSERT(error != NULL);
		return;
	}
	ASSERT(spec.set || (spec.group_count == 0 && !spec.selected));
	ASSERT(spec.fetch_att_count == 0 || spec.selected);
	for (size_t i = 0; i < spec.group_count; i++) {
		ASSERT((spec.groups[i].events & ~spec.used_events) == 0);
		for (size_t k = 0; k < spec.groups[i].name_count; k++)
			ASSERT(spec.groups[i].names[k] != NULL);
	}
}

/* Feed the octets of an announced literal from the input; returns the octets used. */
static size_t fuzz_feed_literal(struct imap_parser *parser, const struct imap_literal *lit,
                                const uint8_t *data, size_t avail, bool external)
{
	const struct imap_arg *so_far = imap_parser_args_so_far(parser);
	ASSERT(so_far != NULL);
	(void)imap_parser_arg_count(so_far);
	if (lit->too_large || external || lit->size > avail) {
		imap_parser_literal_external(parser);
		return lit->size > avail ? avail : (size_t)lit->size;
	}
	size_t left = (size_t)lit->size, pos = 0;
	int ret = imap_parser_feed_literal(parser, data, 0);
	ASSERT(ret == (left == 0 ? 1 : 0));
	while (left > 0) {
		size_t n = left > 3 ? left / 2 : left;
		ret = imap_parser_feed_literal(parser, data + pos, n);
		pos += n;
		left -= n;
		ASSERT(ret == (left == 0 ? 1 : 0));
	}
	ASSERT(imap_parser_feed_literal(parser, data, 1) == -1);
	return pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *arena = arena_new(4096);
	struct imap_parser_limits limits = {.line_max = 2048,
	                                    .literal_max = 512,
	                                    .depth_max = FUZZ_DEPTH_MAX,
	                                    .args_max = 300,
	                                    .literal_total_max = 1024};
	struct imap_parser *parser = imap_parser_new(arena, &limits);
	/* The first byte picks how literals are consumed. */
	uint8_t mode = size > 0 ? data[0] : 0;
	size_t pos = size > 0 ? 1 : 0;
	unsigned literal_no = 0;
	while (pos < size) {
		const uint8_t *line = data + pos;
		const uint8_t *end = NULL;
		for (size_t i = pos; i + 1 < size; i++) {
			if (data[i] == '\r' && data[i + 1] == '\n') {
				end = data + i;
				break;
			}
		}
		size_t len = end != NULL ? (size_t)(end - line) : size - pos;
		pos += len + (end != NULL ? 2 : 0);
		struct imap_literal lit;
		const char *error = NULL;
		int ret = imap_parser_feed_line(parser, (const char *)line, len, &lit, &error);
		if (ret == 1) {
			ASSERT(error == NULL);
			fuzz_check_complete(parser, arena);
			arena_reset(arena);
		} else if (ret < 0) {
			ASSERT(error != NULL && strlen(error) > 5);
			ASSERT(imap_parser_args(parser) == NULL);
			arena_reset(arena);
		} else {
			ASSERT(error == NULL && lit.size <= (uint64_t)INT64_MAX);
			if (lit.too_large && lit.sync) {
				/* Refused before any continuation: nothing follows. */
				imap_parser_reset(parser);
				arena_reset(arena);
				continue;
			}
			bool external = ((mode >> (literal_no++ % 8)) & 1) != 0;
			pos += fuzz_feed_literal(parser, &lit, data + pos, size - pos, external);
		}
	}
	imap_parser_free(&parser);
	arena_free(&arena);
	return 0;
}
