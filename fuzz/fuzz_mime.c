/* libFuzzer target for mime/mime, mime/imap_structure, mime/mime_binary and mime/rfc822_addr: parse
 * the input as a message (with the default limits, and again with small limits picked from the
 * input), check the tree's invariants (ranges nest inside the buffer and their parents, every part
 * is found again by its section number), then build ENVELOPE, BODY and BODYSTRUCTURE for every
 * message in it and check that each is well-formed IMAP: balanced parentheses, quoted strings
 * without CR/LF/8-bit and with only \" and \\ escapes, literals whose counts are right. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "mime/imap_structure.h"
#include "mime/mime.h"
#include "mime/mime_binary.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An IMAP response fragment made of lists, NIL, numbers, quoted strings and literals,
 * separated by single spaces. */
static void fuzz_mime_check_imap(const char *s)
{
	int depth = 0;
	/* what came last: '(', ' ', ')' or 't' (a string, number or NIL); lists follow each
	 * other without a space ("((a)(b))", RFC 9051 1*address and 1*body) */
	char last = '(';
	const char *p = s;
	ASSERT(*p == '(');
	while (*p != '\0') {
		if (*p == '(' || *p == ' ' || *p == ')') {
			if (*p == '(')
				ASSERT(last != 't');
			else
				ASSERT(last == 't' || last == ')');
			depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
			ASSERT(depth >= 0);
			last = *p;
			p++;
			continue;
		}
		ASSERT(last == '(' || last == ' ');
		last = 't';
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				ASSERT(*p != '\0' && *p != '\r' && *p != '\n' &&
				       (unsigned char)*p < 0x80);
				if (*p == '\\') {
					p++;
					ASSERT(*p == '"' || *p == '\\');
				}
			}
			p++;
		} else if (*p == '{') {
			size_t n = 0;
			for (p++; *p >= '0' && *p <= '9'; p++)
				n = n * 10 + (size_t)(*p - '0');
			ASSERT(p[0] == '}' && p[1] == '\r' && p[2] == '\n');
			p += 3;
			ASSERT(strnlen(p, n) == n);
			p += n;
		} else {
			ASSERT(strncmp(p, "NIL", 3) == 0 || (*p >= '0' && *p <= '9'));
			while ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
				p++;
		}
	}
	ASSERT(depth == 0);
}

/* Section number of p's child i (prefix "" at the top), or false if it gets too long. */
static bool fuzz_mime_section(char *buf, size_t size, const char *prefix, const char *sep, size_t i)
{
	int n = snprintf(buf, size, "%s%s%zu", prefix, *prefix != '\0' ? sep : "", i);
	return n > 0 && (size_t)n < size;
}

/* Check p and its sub-tree; prefix numbers p's children (RFC 9051 §6.4.5). */
static void fuzz_mime_check_part(struct arena *arena, const unsigned char *msg, size_t len,
                                 const struct mime_part *root, const struct mime_part *p,
                                 const char *prefix)
{
	char sub[64];
	ASSERT(p->header_start + p->header_len == p->body_start);
	ASSERT(p->body_start + p->body_len <= len);
	ASSERT(p->body_size >= p->body_len && p->header_size >= p->header_len);
	ASSERT(p->type != NULL && p->subtype != NULL);
	if (p->kind == MIME_KIND_LEAF)
		ASSERT(p->child_count == 0);
	size_t pos = p->body_start;
	for (size_t i = 0; i < p->child_count; i++) {
		const struct mime_part *c = &p->children[i];
		ASSERT(c->parent == p && c->depth == p->depth + 1);
		ASSERT(c->header_start >= pos);
		ASSERT(c->body_start + c->body_len <= p->body_start + p->body_len);
		pos = c->body_start + c->body_len;
	}
	if (p->kind == MIME_KIND_MESSAGE) {
		const struct mime_part *r = p->message;
		ASSERT(p->child_count == 1 && r == p->children);
		fuzz_mime_check_imap(imap_envelope(arena, msg, len, r));
		if (r->kind == MIME_KIND_MULTIPART) {
			fuzz_mime_check_part(arena, msg, len, root, r, prefix);
		} else if (fuzz_mime_section(sub, sizeof(sub), prefix, ".", 1)) {
			ASSERT(mime_part_find(root, sub) == r);
			fuzz_mime_check_part(arena, msg, len, root, r, sub);
		}
		return;
	}
	for (size_t i = 0; i < p->child_count; i++) {
		if (!fuzz_mime_section(sub, sizeof(sub), prefix, ".", i + 1))
			break;
		ASSERT(mime_part_find(root, sub) == &p->children[i]);
		fuzz_mime_check_part(arena, msg, len, root, &p->children[i], sub);
	}
}

static void fuzz_mime_one(const unsigned char *msg, size_t len, const struct mime_limits *lim)
{
	struct arena *arena = arena_new(16384);
	struct mime_part *root;
	int ret = mime_parse(arena, msg, len, lim, &root);
	ASSERT(ret == 0 || ret == -1);
	ASSERT(root != NULL && root->header_start == 0);
	ASSERT(root->body_start + root->body_len == len);
	fuzz_mime_check_imap(imap_envelope(arena, msg, len, root));
	fuzz_mime_check_imap(imap_bodystructure(arena, msg, len, root, false));
	fuzz_mime_check_imap(imap_bodystructure(arena, msg, len, root, true));
	if (root->kind == MIME_KIND_MULTIPART) {
		fuzz_mime_check_part(arena, msg, len, root, root, "");
	} else {
		ASSERT(mime_part_find(root, "1") == root);
		fuzz_mime_check_part(arena, msg, len, root, root, "1");
	}
	arena_free(&arena);
}

/* mime_binary (literal8 APPEND): counts agree; nothing converted means unchanged. */
static void fuzz_mime_binary_write(void *ctx, const void *p, size_t n)
{
	(void)p;
	*(size_t *)ctx += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t out_len = 0;
	size_t converted = mime_binary_convert(data, size, fuzz_mime_binary_write, &out_len);
	ASSERT(converted == mime_binary_count(data, size));
	ASSERT(converted > 0 || out_len == size);
	fuzz_mime_one(data, size, NULL);
	if (size > 0) {
		struct mime_limits lim = {
		    .depth_max = 1 + data[0] % 5,
		    .parts_max = 1 + data[0] / 16,
		    .header_max = data[0] % 3 == 0 ? 0 : 16 + data[0],
		};
		fuzz_mime_one(data, size, &lim);
	}
	return 0;
}
