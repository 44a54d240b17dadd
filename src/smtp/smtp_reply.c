/* SMTP reply parser and EHLO extension reader (see smtp_reply.h). */
#include "smtp/smtp_reply.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->reply.text, SMTP_REPLY_TEXT_MAX);
}

void smtp_reply_parser_deinit(struct smtp_reply_parser *p)
{
	buf_free(&p->reply.text);
}

static void smtp_reply_reset(struct smtp_reply_parser *p)
{
	p->partial = false;
	p->reply.code = 0;
	p->reply.lines = 0;
	p->reply.enhanced[0] = '\0';
	buf_reset(&p->reply.text);
}

static bool smtp_reply_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* An RFC 3463 status code "class.subject.detail" at the start of text, followed by a space or
 * the end: returns its length (0 when there is none). class 2, 4 or 5; subject and detail 1-3
 * digits each, without leading zeros beyond one digit. */
static size_t smtp_reply_enhanced_len(const char *t, size_t len)
{
	if (len < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.')
		return 0;
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && smtp_reply_digit(t[i]) && i - start < 4)
			i++;
		if (i == start || i - start > 3)
			return 0;
		if (part == 0) {
			if (i >= len || t[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && t[i] != ' ')
		return 0;
	return i;
}

/* Append one line's text to the reply (controls replaced; cut at the text maximum). */
static void smtp_reply_add_text(struct smtp_reply *r, const char *t, size_t len)
{
	if (r->lines > 1 && buf_append(&r->text, "\n", 1) < 0)
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];
		char o = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
		if (buf_append(&r->text, &o, 1) < 0)
			return;
	}
}

int smtp_reply_parser_feed(struct smtp_reply_parser *p, const char *line, size_t len,
                           const char **error_r)
{
	struct smtp_reply *r = &p->reply;
	if (!p->partial)
		smtp_reply_reset(p);
	if (len + 2 > SMTP_REPLY_LINE_MAX) {
		*error_r = "reply line too long";
		goto bad;
	}
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    !smtp_reply_digit(line[2])) {
		*error_r = "reply without a valid code";
		goto bad;
	}
	if (len > 3 && line[3] != ' ' && line[3] != '-') {
		*error_r = "reply code not followed by a space or '-'";
		goto bad;
	}
	int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (p->partial && code != r->code) {
		/* RFC 5321 §4.2.1: every line of a multiline reply carries the same code */
		*error_r = "multiline reply with different codes";
		goto bad;
	}
	if (r->lines == SMTP_REPLY_LINES_MAX) {
		*error_r = "reply has too many lines";
		goto bad;
	}
	r->code = code;
	r->lines++;
	bool more = len > 3 && line[3] == '-';
	const char *t = len > 4 ? line + 4 : "";
	size_t tlen = len > 4 ? len - 4 : 0;
	size_t elen = smtp_reply_enhanced_len(t, tlen);
	if (elen > 0 && t[0] == line[0]) {
		if (r->lines == 1)
			snprintf(r->enhanced, sizeof(r->enhanced), "%.*s", (int)elen, t);
		if (strlen(r->enhanced) == elen && memcmp(r->enhanced, t, elen) == 0) {
			t += elen;
			tlen -= elen;
			if (tlen > 0) {
				t++;
				tlen--;
			}
		}
	}
	smtp_reply_add_text(r, t, tlen);
	p->partial = more;
	return more ? 0 : 1;
bad:
	smtp_reply_reset(p);
	return -1;
}

const char *smtp_reply_oneline(const struct smtp_reply *r, struct buf *out)
{
	buf_reset(out);
	const char *t = buf_cstr(&r->text);
	for (size_t i = 0; i < r->text.len; i++) {
		char c = t[i] == '\n' ? ' ' : t[i];
		if (buf_append(out, &c, 1) < 0)
			break;
	}
	return buf_cstr(out);
}

/* The next space-separated word of s[*pos..len): returns its length, *start_r its start. */
static size_t smtp_reply_word(const char *s, size_t len, size_t *pos, size_t *start_r)
{
	while (*pos < len && s[*pos] == ' ')
		(*pos)++;
	*start_r = *pos;
	while (*pos < len && s[*pos] != ' ' && s[*pos] != '=')
		(*pos)++;
	size_t n = *pos - *start_r;
	if (*pos < len && s[*pos] == '=')
		(*pos)++; /* "AUTH=PLAIN" (pre-RFC 4954 servers) */
	return n;
}

static bool smtp_reply_is(const char *w, size_t n, const char *kw)
{
	return n == strlen(kw) && strncasecmp(w, kw, n) == 0;
}

/* SIZE's argument: the limit, or 0 when it is missing or not a number. */
static uint64_t smtp_reply_size_arg(const char *s, size_t len)
{
	uint64_t n = 0;
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!smtp_reply_digit(s[i]))
			return 0;
		unsigned d = (unsigned)(s[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return 0;
		n = n * 10 + d;
	}
	return n;
}

static void smtp_reply_ehlo_line(const char *s, size_t len, struct smtp_ehlo *e)
{
	size_t pos = 0, w;
	size_t n = smtp_reply_word(s, len, &pos, &w);
	const char *kw = s + w;
	if (smtp_reply_is(kw, n, "PIPELINING"))
		e->pipelining = true;
	else if (smtp_reply_is(kw, n, "STARTTLS"))
		e->starttls = true;
	else if (smtp_reply_is(kw, n, "8BITMIME"))
		e->eightbitmime = true;
	else if (smtp_reply_is(kw, n, "SMTPUTF8"))
		e->smtputf8 = true;
	else if (smtp_reply_is(kw, n, "CHUNKING"))
		e->chunking = true;
	else if (smtp_reply_is(kw, n, "DSN"))
		e->dsn = true;
	else if (smtp_reply_is(kw, n, "ENHANCEDSTATUSCODES"))
		e->enhancedstatuscodes = true;
	else if (smtp_reply_is(kw, n, "REQUIRETLS"))
		e->requiretls = true;
	else if (smtp_reply_is(kw, n, "SIZE")) {
		e->size = true;
		size_t a, an = smtp_reply_word(s, len, &pos, &a);
		e->size_max = smtp_reply_size_arg(s + a, an);
	} else if (smtp_reply_is(kw, n, "AUTH")) {
		for (;;) {
			size_t a, an = smtp_reply_word(s, len, &pos, &a);
			if (an == 0)
				break;
			if (smtp_reply_is(s + a, an, "PLAIN"))
				e->auth |= SMTP_EHLO_AUTH_PLAIN;
			else if (smtp_reply_is(s + a, an, "LOGIN"))
				e->auth |= SMTP_EHLO_AUTH_LOGIN;
		}
	}
}

void smtp_reply_ehlo(const struct smtp_reply *r, struct smtp_ehlo *e)
{
	memset(e, 0, sizeof(*e));
	const char *t = buf_cstr(&r->text);
	size_t len = r->text.len;
	const char *nl = memchr(t, '\n', len);
	if (nl == NULL)
		return; /* a one-line reply: no extensions */
	size_t pos = (size_t)(nl - t) + 1;
	while (pos < len) {
		const char *end = memchr(t + pos, '\n', len - pos);
		size_t n = end != NULL ? (size_t)(end - (t + pos)) : len - pos;
		smtp_reply_ehlo_line(t + pos, n, e);
		pos += n + 1;
	}
}
