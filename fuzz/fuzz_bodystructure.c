/* libFuzzer target for the BODYSTRUCTURE writer, round trip: the input is parsed as a
 * message (mime/mime), its BODY and BODYSTRUCTURE are written (mime/imap_structure), and
 * the text is parsed back with the server's own IMAP parser (imap/imap_parser, literals
 * included): it must parse, and the parsed lists must describe the same tree — a
 * multipart has one list per part and then its subtype, a leaf starts with its type and
 * subtype and has a number as its size, message/rfc822 carries an envelope and the
 * encapsulated message's structure. The same message written twice gives the same text. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "imap/imap_parser.h"
#include "mime/imap_structure.h"
#include "mime/mime.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* text with a space put between adjacent lists ")(": the response grammar writes
 * 1*body without separators (RFC 9051 §9 body-type-mpart), the command parser wants
 * arguments separated. Quoted strings and literals are copied as they are. */
static void fuzz_bs_spaced(struct buf *out, const char *text)
{
	const char *p = text;
	while (*p != '\0') {
		if (*p == '"') {
			const char *q = p + 1;
			while (*q != '"') {
				ASSERT(*q != '\0');
				q += q[0] == '\\' && q[1] != '\0' ? 2 : 1;
			}
			ASSERT(buf_append(out, p, (size_t)(q + 1 - p)) == 0);
			p = q + 1;
		} else if (*p == '{') {
			char *end;
			unsigned long long n = strtoull(p + 1, &end, 10);
			ASSERT(end[0] == '}' && end[1] == '\r' && end[2] == '\n');
			ASSERT(strnlen(end + 3, n) == n);
			ASSERT(buf_append(out, p, (size_t)(end + 3 - p) + n) == 0);
			p = end + 3 + n;
		} else {
			ASSERT(buf_append(out, p, 1) == 0);
			if (p[0] == ')' && p[1] == '(')
				ASSERT(buf_puts(out, " ") == 0);
			p++;
		}
	}
}

/* Parse "t X <text>" as a command; the arguments (one list expected). */
static const struct imap_arg *fuzz_bs_parse(struct arena *a, const char *text)
{
	struct imap_parser_limits lim = {.line_max = (size_t)1 << 24,
	                                 .literal_max = (uint64_t)1 << 24,
	                                 .literal_total_max = (uint64_t)1 << 26,
	                                 .depth_max = 1000,
	                                 .args_max = 1000000};
	struct imap_parser *p = imap_parser_new(a, &lim);
	struct buf cmd;
	buf_init(&cmd, (size_t)1 << 26);
	ASSERT(buf_puts(&cmd, "t X ") == 0);
	fuzz_bs_spaced(&cmd, text);
	const char *s = cmd.data, *end = cmd.data + cmd.len;
	const struct imap_arg *args = NULL;
	for (;;) {
		const char *crlf = NULL;
		for (const char *q = s; q + 1 < end; q++)
			if (q[0] == '\r' && q[1] == '\n') {
				crlf = q;
				break;
			}
		size_t len = crlf != NULL ? (size_t)(crlf - s) : (size_t)(end - s);
		struct imap_literal lit;
		const char *error = NULL;
		int ret = imap_parser_feed_line(p, s, len, &lit, &error);
		if (ret < 0)
			log_panic("BODYSTRUCTURE does not parse: %s: %s", error, text);
		if (ret == 1) {
			args = imap_parser_args(p);
			break;
		}
		ASSERT(crlf != NULL && !lit.too_large);
		s = crlf + 2;
		ASSERT(lit.size <= (uint64_t)(end - s));
		ASSERT(imap_parser_feed_literal(p, (const unsigned char *)s, (size_t)lit.size) ==
		       1);
		s += lit.size;
	}
	imap_parser_free(&p);
	buf_free(&cmd);
	return args;
}

static bool fuzz_bs_string(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_STRING || arg->type == IMAP_ARG_LITERAL;
}

static bool fuzz_bs_same(const struct imap_arg *arg, const char *s)
{
	return fuzz_bs_string(arg) && strlen(s) == arg->len &&
	       strncasecmp(arg->str, s, arg->len) == 0;
}

static void fuzz_bs_check(const struct mime_part *p, const struct imap_arg *arg)
{
	ASSERT(arg->type == IMAP_ARG_LIST);
	const struct imap_arg *l = arg->list;
	if (p->kind == MIME_KIND_MULTIPART) {
		size_t i = 0;
		for (; l[i].type == IMAP_ARG_LIST; i++)
			if (p->child_count > 0) {
				ASSERT(i < p->child_count);
				fuzz_bs_check(&p->children[i], &l[i]);
			}
		ASSERT(p->child_count == 0 || i == p->child_count);
		ASSERT(fuzz_bs_string(&l[i]));
		if (p->subtype[0] != '\0')
			ASSERT(fuzz_bs_same(&l[i], p->subtype));
		return;
	}
	size_t n = imap_parser_arg_count(l);
	ASSERT(n >= 7);
	ASSERT(fuzz_bs_string(&l[0]) && fuzz_bs_string(&l[1]));
	if (p->type[0] != '\0' && p->subtype[0] != '\0') {
		ASSERT(fuzz_bs_same(&l[0], p->type));
		ASSERT(fuzz_bs_same(&l[1], p->subtype));
	}
	ASSERT(l[2].type == IMAP_ARG_LIST || l[2].type == IMAP_ARG_NIL);
	ASSERT(l[6].type == IMAP_ARG_ATOM);
	for (size_t i = 0; i < l[6].len; i++)
		ASSERT(l[6].str[i] >= '0' && l[6].str[i] <= '9');
	if (p->kind == MIME_KIND_MESSAGE) {
		ASSERT(n >= 10);
		ASSERT(l[7].type == IMAP_ARG_LIST);
		fuzz_bs_check(p->message, &l[8]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		log_setup(LOG_LEVEL_ERROR, false);
		init = true;
	}
	struct arena *arena = arena_new(16384);
	struct mime_part *root;
	(void)mime_parse(arena, data, size, NULL, &root);
	for (int extended = 0; extended <= 1; extended++) {
		char *text = imap_bodystructure(arena, data, size, root, extended);
		char *again = imap_bodystructure(arena, data, size, root, extended);
		ASSERT(strcmp(text, again) == 0);
		const struct imap_arg *args = fuzz_bs_parse(arena, text);
		ASSERT(imap_parser_arg_count(args) == 1);
		fuzz_bs_check(root, &args[0]);
	}
	arena_free(&arena);
	return 0;
}
