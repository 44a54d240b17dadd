/* RFC 5322 lexer and address-list parser (see rfc822_addr.h). The recovery rules for broken
 * input follow what dovecot-imapd answers in ENVELOPE, observed from its output: an address
 * without a domain gets "MISSING_DOMAIN", a bare display name gets "MISSING_MAILBOX", a
 * broken angle address gets the domain "SYNTAX_ERROR", garbage after an address ends the
 * list. */
#include "mime/rfc822_addr.h"

#include <stdint.h>
#include <string.h>

#include "core/log.h"
#include "core/banned.h"

/* Builders are sized so that they never reach their maximum (the output of every function
 * here is bounded by a small multiple of its input). */
#define RFC822_ADDR_BUF_MAX (SIZE_MAX / 4)

static void rfc822_addr_put(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) < 0)
		log_panic("rfc822_addr: builder overflow");
}

static void rfc822_addr_putc(struct buf *b, char c)
{
	rfc822_addr_put(b, &c, 1);
}

/* 1 = atext, 2 = atext that is also a MIME tspecial ("/", "=", "?"), 0 = neither. */
static unsigned char rfc822_addr_class(unsigned char c)
{
	if (c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	if (c != '\0' && strchr("!#$%&'*+-^_`{|}~", c) != NULL)
		return 1;
	if (c != '\0' && strchr("/=?", c) != NULL)
		return 2;
	return 0;
}

bool rfc822_addr_is_atext(unsigned char c)
{
	return rfc822_addr_class(c) != 0;
}

bool rfc822_addr_is_token_char(unsigned char c)
{
	return rfc822_addr_class(c) == 1 || c == '.';
}

/* Append [start, end) with NUL octets replaced by U+FFFD. */
static void rfc822_addr_put_text(struct buf *b, const unsigned char *start,
                                 const unsigned char *end)
{
	for (const unsigned char *p = start; p < end; p++) {
		if (*p == '\0') {
			rfc822_addr_put(b, start, (size_t)(p - start));
			rfc822_addr_put(b, "\xEF\xBF\xBD", 3);
			start = p + 1;
		}
	}
	rfc822_addr_put(b, start, (size_t)(end - start));
}

/* Append [start, lf) without a CR just before lf: a folding line break inside a comment or
 * quoted string goes, the WSP after it stays. */
static void rfc822_addr_put_line(struct buf *b, const unsigned char *start, const unsigned char *lf)
{
	if (lf > start && lf[-1] == '\r')
		lf--;
	rfc822_addr_put_text(b, start, lf);
}

/* At a backslash: -1 at the end of input; 0 when it escapes nothing (a CR, LF or NUL
 * follows: the backslash is kept as text); 1 with c->p on the escaped octet. */
static int rfc822_addr_escape(struct rfc822_addr_cursor *c)
{
	if (++c->p >= c->end)
		return -1;
	if (*c->p == '\r' || *c->p == '\n' || *c->p == '\0') {
		c->p--;
		return 0;
	}
	return 1;
}

/* At '(': skip a (nested) comment, recording its text. -1 when unterminated. */
static int rfc822_addr_skip_comment(struct rfc822_addr_cursor *c)
{
	int level = 1, esc;
	struct buf *out = c->comment;
	if (out != NULL)
		buf_reset(out);
	const unsigned char *start = ++c->p;
	for (; c->p < c->end; c->p++) {
		switch (*c->p) {
		case '(':
			level++;
			break;
		case ')':
			if (--level == 0) {
				if (out != NULL)
					rfc822_addr_put_text(out, start, c->p);
				c->p++;
				return 0;
			}
			break;
		case '\0':
			/* flushed at once, so that an unterminated comment keeps it (Dovecot) */
			if (out != NULL)
				rfc822_addr_put_text(out, start, c->p + 1);
			start = c->p + 1;
			break;
		case '\n':
			if (out != NULL)
				rfc822_addr_put_line(out, start, c->p);
			start = c->p + 1;
			break;
		case '\\':
			if ((esc = rfc822_addr_escape(c)) < 0)
				return -1;
			if (esc > 0) {
				if (out != NULL)
					rfc822_addr_put_text(out, start, c->p - 1);
				start = c->p;
			}
			break;
		default:
			break;
		}
	}
	return -1;
}

int rfc822_addr_skip_cfws(struct rfc822_addr_cursor *c)
{
	while (c->p < c->end) {
		unsigned char ch = *c->p;
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			c->p++;
			continue;
		}
		if (ch != '(')
			break;
		if (rfc822_addr_skip_comment(c) < 0)
			return -1;
	}
	return c->p < c->end ? 1 : 0;
}

/* Append the run [start, c->p) and skip CFWS after it (0 at the very end). */
static int rfc822_addr_run_done(struct rfc822_addr_cursor *c, const unsigned char *start,
                                struct buf *out)
{
	rfc822_addr_put(out, start, (size_t)(c->p - start));
	return c->p < c->end ? rfc822_addr_skip_cfws(c) : 0;
}

int rfc822_addr_mime_token(struct rfc822_addr_cursor *c, struct buf *out)
{
	const unsigned char *start = c->p;
	while (c->p < c->end && rfc822_addr_is_token_char(*c->p))
		c->p++;
	return rfc822_addr_run_done(c, start, out);
}

int rfc822_addr_atom(struct rfc822_addr_cursor *c, struct buf *out)
{
	if (c->p >= c->end || !rfc822_addr_is_atext(*c->p))
		return -1;
	const unsigned char *start = c->p;
	while (c->p < c->end && rfc822_addr_is_atext(*c->p))
		c->p++;
	return rfc822_addr_run_done(c, start, out);
}

int rfc822_addr_dot_atom(struct rfc822_addr_cursor *c, struct buf *out)
{
	if (c->p >= c->end || !rfc822_addr_is_atext(*c->p))
		return -1;
	const unsigned char *start = c->p++;
	while (c->p < c->end) {
		if (rfc822_addr_is_atext(*c->p)) {
			c->p++;
			continue;
		}
		if (start == c->p)
			return -1; /* an empty atom: ".." */
		rfc822_addr_put(out, start, (size_t)(c->p - start));
		int ret = rfc822_addr_skip_cfws(c);
		if (ret <= 0)
			return ret;
		if (*c->p != '.')
			return 1;
		c->p++;
		rfc822_addr_putc(out, '.');
		if (rfc822_addr_skip_cfws(c) <= 0)
			return -1; /* a trailing dot */
		start = c->p;
	}
	rfc822_addr_put(out, start, (size_t)(c->p - start));
	return 0;
}

int rfc822_addr_quoted_string(struct rfc822_addr_cursor *c, struct buf *out)
{
	int esc;
	const unsigned char *start = ++c->p;
	for (; c->p < c->end; c->p++) {
		switch (*c->p) {
		case '"':
			rfc822_addr_put_text(out, start, c->p);
			c->p++;
			return rfc822_addr_skip_cfws(c);
		case '\0':
			rfc822_addr_put_text(out, start, c->p + 1);
			start = c->p + 1;
			break;
		case '\n':
			rfc822_addr_put_line(out, start, c->p);
			start = c->p + 1;
			break;
		case '\\':
			if ((esc = rfc822_addr_escape(c)) < 0)
				return -1;
			if (esc > 0) {
				rfc822_addr_put_text(out, start, c->p - 1);
				start = c->p;
			}
			break;
		default:
			break;
		}
	}
	return -1;
}

/* A run of atext and dots, possibly empty (obs-phrase words), then CFWS. */
static int rfc822_addr_atom_or_dots(struct rfc822_addr_cursor *c, struct buf *out)
{
	const unsigned char *start = c->p;
	while (c->p < c->end && (rfc822_addr_is_atext(*c->p) || *c->p == '.'))
		c->p++;
	return rfc822_addr_run_done(c, start, out);
}

int rfc822_addr_phrase(struct rfc822_addr_cursor *c, struct buf *out)
{
	if (c->p >= c->end)
		return 0;
	if (*c->p == '.')
		return -1;
	for (;;) {
		int ret = *c->p == '"' ? rfc822_addr_quoted_string(c, out)
		                       : rfc822_addr_atom_or_dots(c, out);
		if (ret <= 0)
			return ret;
		if (!rfc822_addr_is_atext(*c->p) && *c->p != '"' && *c->p != '.')
			break;
		rfc822_addr_putc(out, ' ');
	}
	return rfc822_addr_skip_cfws(c);
}

/* "[" ... "]" kept with its brackets and backslashes; folding line breaks removed. */
static int rfc822_addr_domain_literal(struct rfc822_addr_cursor *c, struct buf *out)
{
	const unsigned char *start = c->p++;
	for (; c->p < c->end; c->p++) {
		switch (*c->p) {
		case '\0':
			rfc822_addr_put_text(out, start, c->p + 1);
			start = c->p + 1;
			break;
		case '[':
			return -1;
		case ']':
			c->p++;
			rfc822_addr_put_text(out, start, c->p);
			return rfc822_addr_skip_cfws(c);
		case '\n':
			rfc822_addr_put_line(out, start, c->p);
			start = c->p + 1;
			break;
		case '\\':
			if (++c->p >= c->end)
				return -1;
			if (*c->p == '\r' || *c->p == '\n' || *c->p == '\0') {
				rfc822_addr_put_text(out, start, c->p);
				start = c->p;
				c->p--;
			}
			break;
		default:
			break;
		}
	}
	return -1;
}

int rfc822_addr_domain(struct rfc822_addr_cursor *c, struct buf *out)
{
	c->p++; /* '@' */
	if (rfc822_addr_skip_cfws(c) <= 0)
		return -1;
	if (*c->p == '[')
		return rfc822_addr_domain_literal(c, out);
	return rfc822_addr_dot_atom(c, out);
}

/* ---- address lists (RFC 5322 §3.4) ---- */

struct rfc822_addr_ctx {
	struct arena *arena;
	struct rfc822_addr_cursor c;
	struct buf str, comment;
	struct rfc822_address cur; /* the address being built */
	struct rfc822_address *first, *last;
};

static const char *rfc822_addr_dup(struct rfc822_addr_ctx *ctx, const struct buf *b)
{
	return arena_strndup(ctx->arena, b->len > 0 ? b->data : "", b->len);
}

static void rfc822_addr_add(struct rfc822_addr_ctx *ctx)
{
	struct rfc822_address *a = arena_alloc(ctx->arena, sizeof(*a));
	*a = ctx->cur;
	a->next = NULL;
	memset(&ctx->cur, 0, sizeof(ctx->cur));
	if (ctx->first == NULL)
		ctx->first = a;
	else
		ctx->last->next = a;
	ctx->last = a;
}

/* Add the current mailbox with placeholders for what is missing. */
static void rfc822_addr_add_fixed(struct rfc822_addr_ctx *ctx)
{
	if (ctx->cur.mailbox == NULL) {
		ctx->cur.mailbox = "MISSING_MAILBOX";
		ctx->cur.invalid = true;
	}
	if (ctx->cur.domain == NULL || ctx->cur.domain[0] == '\0') {
		ctx->cur.domain = "MISSING_DOMAIN";
		ctx->cur.invalid = true;
	}
	rfc822_addr_add(ctx);
}

/* A local part's dot-atom with dots anywhere (".a", "a..b", "a."), as mail in the wild has
 * them (Dovecot's non-strict dots). */
static int rfc822_addr_loose_dot_atom(struct rfc822_addr_cursor *c, struct buf *out)
{
	int ret = -1;
	do {
		while (*c->p == '.') {
			rfc822_addr_putc(out, '.');
			if (++c->p == c->end)
				return 0;
			ret = 1;
		}
		if (*c->p == '@')
			break;
		ret = rfc822_addr_atom(c, out);
	} while (ret > 0 && *c->p == '.');
	return ret;
}

static int rfc822_addr_local_part(struct rfc822_addr_ctx *ctx)
{
	int ret;
	buf_reset(&ctx->str);
	if (ctx->c.p >= ctx->c.end)
		return -1;
	if (*ctx->c.p == '"')
		ret = rfc822_addr_quoted_string(&ctx->c, &ctx->str);
	else
		ret = rfc822_addr_loose_dot_atom(&ctx->c, &ctx->str);
	if (ret < 0)
		return -1;
	ctx->cur.mailbox = rfc822_addr_dup(ctx, &ctx->str);
	return ret;
}

static int rfc822_addr_domain_part(struct rfc822_addr_ctx *ctx)
{
	buf_reset(&ctx->str);
	int ret = rfc822_addr_domain(&ctx->c, &ctx->str);
	if (ret < 0)
		return -1;
	ctx->cur.domain = rfc822_addr_dup(ctx, &ctx->str);
	return ret;
}

/* obs-route's domain list "@a,@b" (the cursor is at '@'). */
static int rfc822_addr_route(struct rfc822_addr_ctx *ctx)
{
	struct rfc822_addr_cursor *c = &ctx->c;
	buf_reset(&ctx->str);
	for (;;) {
		if (c->p >= c->end)
			return 0;
		if (*c->p != '@')
			break;
		if (ctx->str.len > 0)
			rfc822_addr_putc(&ctx->str, ',');
		rfc822_addr_putc(&ctx->str, '@');
		int ret = rfc822_addr_domain(c, &ctx->str);
		if (ret <= 0)
			return ret;
		while (rfc822_addr_skip_cfws(c) > 0 && *c->p == ',')
			c->p++;
	}
	ctx->cur.route = rfc822_addr_dup(ctx, &ctx->str);
	return 1;
}

/* "<" [route ":"] [local-part ["@" domain]] ">" */
static int rfc822_addr_angle(struct rfc822_addr_ctx *ctx)
{
	struct rfc822_addr_cursor *c = &ctx->c;
	c->p++;
	if (rfc822_addr_skip_cfws(c) <= 0)
		return -1;
	if (*c->p == '@') {
		if (rfc822_addr_route(ctx) > 0 && *c->p == ':') {
			c->p++;
		} else {
			ctx->cur.route = "INVALID_ROUTE";
			if (c->p >= c->end)
				return -1;
		}
		if (rfc822_addr_skip_cfws(c) <= 0)
			return -1;
	}
	if (*c->p != '>') {
		if (rfc822_addr_local_part(ctx) <= 0)
			return -1;
		if (*c->p == '@' && rfc822_addr_domain_part(ctx) <= 0)
			return -1;
	}
	if (*c->p != '>')
		return -1;
	c->p++;
	return rfc822_addr_skip_cfws(c);
}

/* [display-name] angle-addr. -1 (nothing consumed that matters) when it is not one. */
static int rfc822_addr_name_addr(struct rfc822_addr_ctx *ctx)
{
	buf_reset(&ctx->str);
	if (rfc822_addr_phrase(&ctx->c, &ctx->str) <= 0 || *ctx->c.p != '<')
		return -1;
	ctx->cur.name = ctx->str.len > 0 ? rfc822_addr_dup(ctx, &ctx->str) : NULL;
	if (rfc822_addr_angle(ctx) < 0) {
		ctx->cur.domain = "SYNTAX_ERROR";
		ctx->cur.invalid = true;
	}
	return ctx->c.p < ctx->c.end ? 1 : 0;
}

static int rfc822_addr_addr_spec(struct rfc822_addr_ctx *ctx)
{
	struct rfc822_addr_cursor *c = &ctx->c;
	int ret2 = -2;
	buf_reset(&ctx->comment);
	bool quoted = c->p < c->end && *c->p == '"';
	int ret = rfc822_addr_local_part(ctx);
	if (ret <= 0)
		ctx->cur.invalid = true;
	if (ret != 0 && c->p < c->end && *c->p == '@') {
		ret2 = rfc822_addr_domain_part(ctx);
		if (ret2 <= 0)
			ret = ret2;
	}
	if (ctx->comment.len > 0) {
		/* "user@host (Display Name)" */
		ctx->cur.name = rfc822_addr_dup(ctx, &ctx->comment);
	} else if (ret2 == -2) {
		/* No "@domain": a lone word is a mailbox; words followed by more words are a
		 * display name without an address. */
		rfc822_addr_putc(&ctx->str, ' ');
		size_t before = ctx->str.len;
		(void)rfc822_addr_phrase(c, &ctx->str);
		if (ctx->str.len != before) {
			ctx->cur.mailbox = NULL;
			ctx->cur.name = rfc822_addr_dup(ctx, &ctx->str);
		} else if (!quoted) {
			ctx->cur.domain = "";
		}
		ctx->cur.invalid = true;
		ret = -1;
	}
	return ret;
}

static int rfc822_addr_mailbox(struct rfc822_addr_ctx *ctx)
{
	const unsigned char *start = ctx->c.p;
	int ret = rfc822_addr_name_addr(ctx);
	if (ret < 0) {
		ctx->c.p = start;
		ret = rfc822_addr_addr_spec(ctx);
		if (ctx->cur.invalid && ctx->cur.name == NULL && ctx->cur.mailbox != NULL &&
		    ctx->cur.domain == NULL) {
			ctx->cur.name = ctx->cur.mailbox;
			ctx->cur.mailbox = NULL;
		}
	}
	if (ret < 0)
		ctx->cur.invalid = true;
	rfc822_addr_add_fixed(ctx);
	return ret;
}

/* display-name ":" [mailbox-list] ";". -1 when it is not a group. */
static int rfc822_addr_group(struct rfc822_addr_ctx *ctx)
{
	struct rfc822_addr_cursor *c = &ctx->c;
	buf_reset(&ctx->str);
	if (rfc822_addr_phrase(c, &ctx->str) <= 0 || *c->p != ':')
		return -1;
	c->p++;
	int ret = rfc822_addr_skip_cfws(c);
	if (ret <= 0)
		ctx->cur.invalid = true;
	ctx->cur.mailbox = rfc822_addr_dup(ctx, &ctx->str);
	rfc822_addr_add(ctx);
	if (ret > 0 && *c->p != ';') {
		for (;;) {
			(void)rfc822_addr_mailbox(ctx);
			if (c->p >= c->end || *c->p != ',')
				break;
			c->p++;
			if (rfc822_addr_skip_cfws(c) <= 0) {
				ret = -1;
				break;
			}
		}
	}
	if (ret >= 0) {
		if (c->p >= c->end || *c->p != ';') {
			ret = -1;
		} else {
			c->p++;
			ret = rfc822_addr_skip_cfws(c);
		}
	}
	if (ret < 0)
		ctx->cur.invalid = true;
	rfc822_addr_add(ctx); /* the end-of-group marker */
	return ret == 0 ? 0 : 1;
}

static int rfc822_addr_address(struct rfc822_addr_ctx *ctx)
{
	const unsigned char *start = ctx->c.p;
	int ret = rfc822_addr_group(ctx);
	if (ret < 0) {
		ctx->c.p = start;
		ret = rfc822_addr_mailbox(ctx);
	}
	return ret;
}

struct rfc822_address *rfc822_addr_parse_list(struct arena *arena, const unsigned char *s,
                                              size_t len)
{
	struct rfc822_addr_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.arena = arena;
	ctx.c.p = s;
	ctx.c.end = s + len;
	buf_init(&ctx.str, RFC822_ADDR_BUF_MAX);
	buf_init(&ctx.comment, RFC822_ADDR_BUF_MAX);
	ctx.c.comment = &ctx.comment;
	if (rfc822_addr_skip_cfws(&ctx.c) > 0) {
		for (;;) {
			int ret = rfc822_addr_address(&ctx);
			if (ret == 0)
				break;
			if (ctx.c.p >= ctx.c.end || *ctx.c.p != ',')
				break; /* garbage after an address ends the list */
			ctx.c.p++;
			ret = rfc822_addr_skip_cfws(&ctx.c);
			if (ret <= 0) {
				if (ret < 0)
					rfc822_addr_add_fixed(&ctx);
				break;
			}
		}
	}
	buf_free(&ctx.str);
	buf_free(&ctx.comment);
	return ctx.first;
}
