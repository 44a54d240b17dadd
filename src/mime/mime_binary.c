/* Binary parts to base64 for literal8 APPENDs (mime_binary.h). */
#include "mime/mime_binary.h"

#include <stdbool.h>
#include <stdlib.h>

#include "core/arena.h"
#include "core/base64.h"
#include "mime/mime.h"
#include "core/banned.h"

/* Input octets per base64 line: 57 give the 76 characters of RFC 2045 §6.8. */
#define MIME_BINARY_LINE 57

struct mime_binary {
	const unsigned char *msg;
	mime_binary_write_fn *write;
	void *ctx;
	size_t pos;   /* octets of msg written so far */
	size_t count; /* parts converted */
};

static bool mime_binary_is(const struct mime_part *p)
{
	return p->kind == MIME_KIND_LEAF && p->cte == MIME_ENCODING_BINARY && p->mime;
}

/* The part's header without its Content-Transfer-Encoding field(s), which become one
 * "Content-Transfer-Encoding: base64" line in place of the first. */
static void mime_binary_header(struct mime_binary *b, const struct mime_part *p)
{
	struct mime_field_iter it;
	struct mime_field f;
	bool replaced = false;
	mime_field_iter_init(&it, b->msg, p->header_start, p->header_start + p->header_len);
	while (mime_field_iter_next(&it, &f)) {
		if (!mime_field_is(b->msg, &f, "Content-Transfer-Encoding"))
			continue;
		b->write(b->ctx, b->msg + b->pos, f.start - b->pos);
		if (!replaced) {
			static const char cte[] = "Content-Transfer-Encoding: base64\r\n";
			b->write(b->ctx, cte, sizeof(cte) - 1);
			replaced = true;
		}
		b->pos = f.start + f.len;
	}
}

/* The body as base64 lines joined by CRLF: the line end before a boundary (or none at the
 * end of the message) stays where it was, outside the body. */
static void mime_binary_body(struct mime_binary *b, const struct mime_part *p)
{
	b->write(b->ctx, b->msg + b->pos, p->body_start - b->pos);
	for (size_t off = 0; off < p->body_len; off += MIME_BINARY_LINE) {
		size_t n =
		    p->body_len - off < MIME_BINARY_LINE ? p->body_len - off : MIME_BINARY_LINE;
		char *line = base64_encode_dup(b->msg + p->body_start + off, n);
		if (off > 0)
			b->write(b->ctx, "\r\n", 2);
		b->write(b->ctx, line, base64_encoded_len(n));
		free(line);
	}
	b->pos = p->body_start + p->body_len;
}

static void mime_binary_walk(struct mime_binary *b, const struct mime_part *p)
{
	if (mime_binary_is(p)) {
		if (b->write != NULL) {
			mime_binary_header(b, p);
			mime_binary_body(b, p);
		}
		b->count++;
		return;
	}
	for (size_t i = 0; i < p->child_count; i++)
		mime_binary_walk(b, &p->children[i]);
	if (p->message != NULL && p->child_count == 0)
		mime_binary_walk(b, p->message);
}

static size_t mime_binary_run(const unsigned char *msg, size_t len, mime_binary_write_fn *write,
                              void *ctx)
{
	struct arena *arena = arena_new(16384);
	struct mime_part *root;
	struct mime_limits limits = {0};
	if (mime_parse(arena, msg, len, &limits, &root) < 0) {
		/* a limit was reached: the tree is still complete and usable */
	}
	struct mime_binary b = {.msg = msg, .write = write, .ctx = ctx};
	mime_binary_walk(&b, root);
	if (write != NULL)
		write(ctx, msg + b.pos, len - b.pos);
	arena_free(&arena);
	return b.count;
}

size_t mime_binary_count(const unsigned char *msg, size_t len)
{
	return mime_binary_run(msg, len, NULL, NULL);
}

size_t mime_binary_convert(const unsigned char *msg, size_t len, mime_binary_write_fn *write,
                           void *ctx)
{
	return mime_binary_run(msg, len, write, ctx);
}
