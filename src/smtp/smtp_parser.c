/* SMTP command-line parser (see smtp_parser.h): verb lookup through a const table, then the
 * per-verb argument grammar of RFC 5321 §4.1.1 and the ESMTP extensions. Pure and bounded:
 * one pass over the caller's line, numbers checked for overflow before every digit. */
#include "smtp/smtp_parser.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

#define SMTP_PARSER_MAX_DIGITS 20    /* 1*20DIGIT (RFC 1870 §3, RFC 3030 §2) */
#define SMTP_PARSER_MECHANISM_MAX 20 /* RFC 4422 §3.1 sasl-mech */

static const char SMTP_ERR_UNRECOGNIZED[] = "500 5.5.2 Syntax error, command unrecognized";
static const char SMTP_ERR_MAIL_SYNTAX[] = "501 5.5.4 Syntax: MAIL FROM:<address>";
static const char SMTP_ERR_RCPT_SYNTAX[] = "501 5.5.4 Syntax: RCPT TO:<address>";
static const char SMTP_ERR_BAD_SENDER[] = "501 5.1.7 Bad sender address syntax";
static const char SMTP_ERR_BAD_RECIPIENT[] = "501 5.1.3 Bad recipient address syntax";
static const char SMTP_ERR_MAIL_PARAM_SYNTAX[] = "501 5.5.4 Bad MAIL parameter syntax";
static const char SMTP_ERR_RCPT_PARAM_SYNTAX[] = "501 5.5.4 Bad RCPT parameter syntax";
static const char SMTP_ERR_SIZE_SYNTAX[] = "501 5.5.4 Syntax: SIZE=<number>";
static const char SMTP_ERR_REPEATED[] = "501 5.5.4 Repeated MAIL parameter";
static const char SMTP_ERR_MAIL_UNSUPPORTED[] = "555 5.5.4 Unsupported MAIL parameter";
static const char SMTP_ERR_RCPT_UNSUPPORTED[] = "555 5.5.4 Unsupported RCPT parameter";
static const char SMTP_ERR_BODY_UNSUPPORTED[] = "555 5.5.4 Unsupported BODY value";
static const char SMTP_ERR_HELO_INVALID[] = "501 5.5.2 Invalid name";
static const char SMTP_ERR_XTEXT[] = "501 5.5.4 Invalid xtext in MAIL parameter";
static const char SMTP_ERR_RCPT_REPEATED[] = "501 5.5.4 Repeated RCPT parameter";
static const char SMTP_ERR_RET[] = "501 5.5.4 Syntax: RET=FULL or RET=HDRS";
static const char SMTP_ERR_ENVID[] = "501 5.5.4 Invalid ENVID parameter";
static const char SMTP_ERR_NOTIFY[] =
    "501 5.5.4 Syntax: NOTIFY=NEVER or NOTIFY=SUCCESS,FAILURE,DELAY";
static const char SMTP_ERR_ORCPT[] = "501 5.5.4 Invalid ORCPT parameter";

/* What a verb accepts after it; SMTP_ARGS_OWN verbs have a handler below. */
enum smtp_args { SMTP_ARGS_NONE, SMTP_ARGS_ANY, SMTP_ARGS_REQUIRED, SMTP_ARGS_OWN };

struct smtp_verb_def {
	const char *name;
	enum smtp_args args;
	const char *syntax; /* the 501 reply for a bad argument */
};

static const struct smtp_verb_def smtp_verbs[SMTP_VERB_COUNT] = {
    [SMTP_VERB_UNKNOWN] = {"UNKNOWN", SMTP_ARGS_ANY, SMTP_ERR_UNRECOGNIZED},
    [SMTP_VERB_HELO] = {"HELO", SMTP_ARGS_REQUIRED, "501 5.5.4 Syntax: HELO hostname"},
    [SMTP_VERB_EHLO] = {"EHLO", SMTP_ARGS_REQUIRED, "501 5.5.4 Syntax: EHLO hostname"},
    [SMTP_VERB_MAIL] = {"MAIL", SMTP_ARGS_OWN, SMTP_ERR_MAIL_SYNTAX},
    [SMTP_VERB_RCPT] = {"RCPT", SMTP_ARGS_OWN, SMTP_ERR_RCPT_SYNTAX},
    [SMTP_VERB_DATA] = {"DATA", SMTP_ARGS_NONE, "501 5.5.4 Syntax: DATA (no arguments)"},
    [SMTP_VERB_BDAT] = {"BDAT", SMTP_ARGS_OWN, "501 5.5.4 Syntax: BDAT chunk-size [LAST]"},
    [SMTP_VERB_BURL] = {"BURL", SMTP_ARGS_OWN, "501 5.5.4 Syntax: BURL absolute-URI [LAST]"},
    [SMTP_VERB_RSET] = {"RSET", SMTP_ARGS_NONE, "501 5.5.4 Syntax: RSET (no arguments)"},
    [SMTP_VERB_NOOP] = {"NOOP", SMTP_ARGS_ANY, NULL},
    [SMTP_VERB_QUIT] = {"QUIT", SMTP_ARGS_NONE, "501 5.5.4 Syntax: QUIT (no arguments)"},
    [SMTP_VERB_HELP] = {"HELP", SMTP_ARGS_ANY, NULL},
    [SMTP_VERB_VRFY] = {"VRFY", SMTP_ARGS_ANY, NULL},
    [SMTP_VERB_EXPN] = {"EXPN", SMTP_ARGS_ANY, NULL},
    [SMTP_VERB_STARTTLS] = {"STARTTLS", SMTP_ARGS_NONE,
                            "501 5.5.4 Syntax: STARTTLS (no arguments)"},
    [SMTP_VERB_AUTH] = {"AUTH", SMTP_ARGS_OWN,
                        "501 5.5.4 Syntax: AUTH mechanism [initial-response]"},
};

const char *smtp_parser_verb_name(enum smtp_verb verb)
{
	if ((unsigned)verb >= SMTP_VERB_COUNT)
		return "UNKNOWN";
	return smtp_verbs[verb].name;
}

static bool smtp_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool smtp_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* 1*20DIGIT into a uint64_t, with the overflow check before each digit. */
static int smtp_parse_number(const char *s, size_t len, uint64_t *value_r)
{
	uint64_t v = 0;
	if (len == 0 || len > SMTP_PARSER_MAX_DIGITS)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!smtp_is_digit((unsigned char)s[i]))
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*value_r = v;
	return 0;
}

/* Case-insensitive match of s[0..len) against the upper-case word. */
static bool smtp_word_eq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static int smtp_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 3461 §4: upper-case hex digits only */
}

int smtp_parser_xtext_decode(struct arena *arena, const char *s, size_t len, const char **out_r)
{
	char *out = arena_alloc(arena, len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			int hi = i + 2 < len ? smtp_hex((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < len ? smtp_hex((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
			/* The decoded value goes into logs and headers: no controls. */
			if (c < 0x20 || c == 0x7f)
				return -1;
		} else if (c < 0x21 || c > 0x7e || c == '=') {
			return -1;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	*out_r = out;
	return 0;
}

/* RFC 5321 §4.1.3 address-literal: [IPv4], [IPv6:...] or [tag:dcontent]. */
static bool smtp_helo_literal_valid(const char *s, size_t len)
{
	char buf[64];
	if (len < 3 || s[len - 1] != ']')
		return false;
	const char *in = s + 1;
	size_t n = len - 2;
	if (n >= 5 && strncasecmp(in, "IPv6:", 5) == 0) {
		struct in6_addr a6;
		if (n - 5 >= sizeof(buf))
			return false;
		memcpy(buf, in + 5, n - 5);
		buf[n - 5] = '\0';
		return inet_pton(AF_INET6, buf, &a6) == 1;
	}
	const char *colon = memchr(in, ':', n);
	if (colon != NULL) { /* General-address-literal: Standardized-tag ":" 1*dcontent */
		size_t tlen = (size_t)(colon - in);
		if (tlen == 0 || colon + 1 == in + n)
			return false;
		for (size_t i = 0; i < tlen; i++)
			if (!smtp_is_alpha((unsigned char)in[i]) &&
			    !smtp_is_digit((unsigned char)in[i]) && in[i] != '-')
				return false;
		for (const char *p = colon + 1; p < in + n; p++)
			if (*p < 33 || *p > 126 || *p == '[' || *p == '\\' || *p == ']')
				return false;
		return true;
	}
	struct in_addr a4;
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, in, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, &a4) == 1;
}

bool smtp_parser_helo_valid(const char *s, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	if (s[0] == '[')
		return smtp_helo_literal_valid(s, len);
	if (s[len - 1] == '.')
		len--; /* a fully qualified name with its root dot */
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';
		if (c == '.') {
			/* sub-domain = Let-dig [Ldh-str]: no empty label, no '-' at either end */
			if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
				return false;
			label = 0;
		} else if (smtp_is_alpha(c) || smtp_is_digit(c) || c == '-' || c == '_') {
			label++; /* '_' is not in RFC 5321 but common in host names (as Postfix) */
		} else {
			return false;
		}
	}
	return true;
}

/* One space-separated token of s[*pos..len): returns its start and length, skipping the
 * spaces before it. */
static const char *smtp_token(const char *s, size_t len, size_t *pos, size_t *tlen_r)
{
	size_t p = *pos;
	while (p < len && s[p] == ' ')
		p++;
	size_t start = p;
	while (p < len && s[p] != ' ')
		p++;
	*pos = p;
	*tlen_r = p - start;
	return s + start;
}

/* esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 §4.1.2). Splits the token. */
static bool smtp_param_split(const char *tok, size_t tlen, size_t *klen_r, const char **value_r,
                             size_t *vlen_r)
{
	size_t k = 0;
	while (k < tlen && tok[k] != '=')
		k++;
	if (k == 0 ||
	    !(smtp_is_alpha((unsigned char)tok[0]) || smtp_is_digit((unsigned char)tok[0])))
		return false;
	for (size_t i = 1; i < k; i++) {
		unsigned char c = (unsigned char)tok[i];
		if (!smtp_is_alpha(c) && !smtp_is_digit(c) && c != '-')
			return false;
	}
	*klen_r = k;
	*value_r = NULL;
	*vlen_r = 0;
	if (k == tlen)
		return true;
	if (k + 1 == tlen)
		return false; /* "KEY=" with an empty value */
	for (size_t i = k + 1; i < tlen; i++) {
		unsigned char c = (unsigned char)tok[i];
		if (c < 33 || c > 126 || c == '=')
			return false;
	}
	*value_r = tok + k + 1;
	*vlen_r = tlen - k - 1;
	return true;
}

/* Flags of the MAIL parameters already seen, to refuse repeats. */
enum smtp_mail_seen {
	SMTP_SEEN_SIZE = 1 << 0,
	SMTP_SEEN_BODY = 1 << 1,
	SMTP_SEEN_SMTPUTF8 = 1 << 2,
	SMTP_SEEN_AUTH = 1 << 3,
	SMTP_SEEN_RET = 1 << 4,
	SMTP_SEEN_ENVID = 1 << 5,
	SMTP_SEEN_REQUIRETLS = 1 << 6,
};

/* RCPT parameters already seen. */
enum smtp_rcpt_seen {
	SMTP_SEEN_NOTIFY = 1 << 0,
	SMTP_SEEN_ORCPT = 1 << 1,
};

/* One MAIL parameter (keyword already split and syntax-checked). */
static int smtp_mail_param(struct arena *arena, struct smtp_command *cmd, unsigned *seen,
                           const char *key, size_t klen, const char *value, size_t vlen,
                           const char **error_r)
{
	unsigned flag;
	if (smtp_word_eq(key, klen, "SIZE"))
		flag = SMTP_SEEN_SIZE;
	else if (smtp_word_eq(key, klen, "BODY"))
		flag = SMTP_SEEN_BODY;
	else if (smtp_word_eq(key, klen, "SMTPUTF8"))
		flag = SMTP_SEEN_SMTPUTF8;
	else if (smtp_word_eq(key, klen, "AUTH"))
		flag = SMTP_SEEN_AUTH;
	else if (smtp_word_eq(key, klen, "RET"))
		flag = SMTP_SEEN_RET;
	else if (smtp_word_eq(key, klen, "ENVID"))
		flag = SMTP_SEEN_ENVID;
	else if (smtp_word_eq(key, klen, "REQUIRETLS"))
		flag = SMTP_SEEN_REQUIRETLS;
	else
		return *error_r = SMTP_ERR_MAIL_UNSUPPORTED, -1;
	if ((*seen & flag) != 0)
		return *error_r = SMTP_ERR_REPEATED, -1;
	*seen |= flag;
	/* SMTPUTF8 and REQUIRETLS take no value; the others need one. */
	if ((flag == SMTP_SEEN_SMTPUTF8 || flag == SMTP_SEEN_REQUIRETLS) != (value == NULL))
		return *error_r = SMTP_ERR_MAIL_PARAM_SYNTAX, -1;
	switch (flag) {
	case SMTP_SEEN_SIZE: /* RFC 1870 §3 */
		if (smtp_parse_number(value, vlen, &cmd->size) < 0)
			return *error_r = SMTP_ERR_SIZE_SYNTAX, -1;
		cmd->size_set = true;
		break;
	case SMTP_SEEN_BODY: /* RFC 6152 §2 */
		if (smtp_word_eq(value, vlen, "7BIT"))
			cmd->body = SMTP_BODY_7BIT;
		else if (smtp_word_eq(value, vlen, "8BITMIME"))
			cmd->body = SMTP_BODY_8BITMIME;
		else
			return *error_r = SMTP_ERR_BODY_UNSUPPORTED, -1;
		break;
	case SMTP_SEEN_SMTPUTF8: /* RFC 6531 §3.4 */
		cmd->smtputf8 = true;
		break;
	case SMTP_SEEN_REQUIRETLS: /* RFC 8689 §4.1 */
		cmd->requiretls = true;
		break;
	case SMTP_SEEN_RET: /* RFC 3461 §4.3 */
		if (smtp_word_eq(value, vlen, "FULL"))
			cmd->ret = SMTP_RET_FULL;
		else if (smtp_word_eq(value, vlen, "HDRS"))
			cmd->ret = SMTP_RET_HDRS;
		else
			return *error_r = SMTP_ERR_RET, -1;
		break;
	case SMTP_SEEN_ENVID: /* RFC 3461 §4.4: xtext, at most 100 characters; kept as sent */
		if (vlen > SMTP_ENVID_MAX ||
		    smtp_parser_xtext_decode(arena, value, vlen, &cmd->envid) < 0)
			return *error_r = SMTP_ERR_ENVID, -1;
		cmd->envid = arena_strndup(arena, value, vlen);
		break;
	default: /* AUTH, RFC 4954 §5: "<>" or a mailbox, as xtext */
		if (smtp_parser_xtext_decode(arena, value, vlen, &cmd->auth_param) < 0)
			return *error_r = SMTP_ERR_XTEXT, -1;
		break;
	}
	return 0;
}

/* NOTIFY=NEVER, or a comma list of SUCCESS, FAILURE and DELAY (RFC 3461 §4.1). */
static int smtp_notify(const char *value, size_t vlen, unsigned *notify_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} words[] = {{"SUCCESS", SMTP_NOTIFY_SUCCESS},
	             {"FAILURE", SMTP_NOTIFY_FAILURE},
	             {"DELAY", SMTP_NOTIFY_DELAY},
	             {"NEVER", SMTP_NOTIFY_NEVER}};
	unsigned notify = 0;
	size_t pos = 0;
	while (pos <= vlen) {
		size_t end = pos;
		while (end < vlen && value[end] != ',')
			end++;
		size_t i = 0;
		while (i < 4 && !smtp_word_eq(value + pos, end - pos, words[i].name))
			i++;
		if (i == 4)
			return -1; /* unknown or empty item */
		notify |= words[i].bit;
		pos = end + 1;
	}
	/* NEVER "MUST NOT" be combined with the others. */
	if ((notify & SMTP_NOTIFY_NEVER) && notify != SMTP_NOTIFY_NEVER)
		return -1;
	*notify_r = notify;
	return 0;
}

/* ORCPT=addr-type;xtext (RFC 3461 §4.2), at most 500 characters; kept as sent (the next
 * hop and the DSN's Original-Recipient get it so). */
static int smtp_orcpt(struct arena *arena, const char *value, size_t vlen, const char **orcpt_r)
{
	size_t t = 0;
	while (t < vlen && value[t] != ';') {
		unsigned char c = (unsigned char)value[t++];
		if (!smtp_is_alpha(c) && !smtp_is_digit(c) && c != '-')
			return -1;
	}
	const char *addr;
	if (vlen > SMTP_ORCPT_MAX || t == 0 || t + 1 >= vlen ||
	    smtp_parser_xtext_decode(arena, value + t + 1, vlen - t - 1, &addr) < 0)
		return -1;
	*orcpt_r = arena_strndup(arena, value, vlen);
	return 0;
}

/* One RCPT parameter (keyword already split and syntax-checked). */
static int smtp_rcpt_param(struct arena *arena, struct smtp_command *cmd, unsigned *seen,
                           const char *key, size_t klen, const char *value, size_t vlen,
                           const char **error_r)
{
	unsigned flag;
	if (smtp_word_eq(key, klen, "NOTIFY"))
		flag = SMTP_SEEN_NOTIFY;
	else if (smtp_word_eq(key, klen, "ORCPT"))
		flag = SMTP_SEEN_ORCPT;
	else
		return *error_r = SMTP_ERR_RCPT_UNSUPPORTED, -1;
	if ((*seen & flag) != 0)
		return *error_r = SMTP_ERR_RCPT_REPEATED, -1;
	*seen |= flag;
	if (value == NULL)
		return *error_r = SMTP_ERR_RCPT_PARAM_SYNTAX, -1;
	if (flag == SMTP_SEEN_NOTIFY && smtp_notify(value, vlen, &cmd->notify) < 0)
		return *error_r = SMTP_ERR_NOTIFY, -1;
	if (flag == SMTP_SEEN_ORCPT && smtp_orcpt(arena, value, vlen, &cmd->orcpt) < 0)
		return *error_r = SMTP_ERR_ORCPT, -1;
	return 0;
}

/* The parameters after a MAIL or RCPT path: s[pos..len) (trailing spaces already gone). */
static int smtp_params(struct arena *arena, struct smtp_command *cmd, const char *s, size_t len,
                       size_t pos, const char **error_r)
{
	bool mail = cmd->verb == SMTP_VERB_MAIL;
	unsigned seen = 0;
	while (pos < len) {
		size_t tlen, klen, vlen;
		const char *value, *tok = smtp_token(s, len, &pos, &tlen);
		if (!smtp_param_split(tok, tlen, &klen, &value, &vlen)) {
			*error_r = mail ? SMTP_ERR_MAIL_PARAM_SYNTAX : SMTP_ERR_RCPT_PARAM_SYNTAX;
			return -1;
		}
		if (!mail) {
			if (smtp_rcpt_param(arena, cmd, &seen, tok, klen, value, vlen, error_r) < 0)
				return -1;
			continue;
		}
		if (smtp_mail_param(arena, cmd, &seen, tok, klen, value, vlen, error_r) < 0)
			return -1;
	}
	return 0;
}

/* End of the path that starts with '<' at s[0]: the '>' outside a quoted string. Returns its
 * index, or 0 when there is none. */
static size_t smtp_path_end(const char *s, size_t len)
{
	bool quoted = false;
	for (size_t i = 1; i < len; i++) {
		if (quoted && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '>')
			return i;
	}
	return 0;
}

/* MAIL FROM:<path> [params] / RCPT TO:<path> [params] (RFC 5321 §4.1.1.2, §4.1.1.3).
 * Spaces after the colon are tolerated, as Postfix does. */
static int smtp_parse_mail_rcpt(struct arena *arena, struct smtp_command *cmd, const char *s,
                                size_t len, const char **error_r)
{
	bool mail = cmd->verb == SMTP_VERB_MAIL;
	const char *prefix = mail ? "FROM:" : "TO:";
	const char *bad_addr = mail ? SMTP_ERR_BAD_SENDER : SMTP_ERR_BAD_RECIPIENT;
	size_t plen = strlen(prefix), pos;
	if (len < plen || strncasecmp(s, prefix, plen) != 0) {
		*error_r = smtp_verbs[cmd->verb].syntax;
		return -1;
	}
	for (pos = plen; pos < len && s[pos] == ' ';)
		pos++;
	if (pos == len) {
		*error_r = smtp_verbs[cmd->verb].syntax;
		return -1;
	}
	size_t end = s[pos] == '<' ? smtp_path_end(s + pos, len - pos) : 0;
	const char *reason;
	if (end == 0 ||
	    address_parse_path(arena, s + pos, end + 1, mail, &cmd->path, &reason) < 0) {
		*error_r = bad_addr;
		return -1;
	}
	pos += end + 1;
	if (pos < len && s[pos] != ' ') {
		*error_r = bad_addr;
		return -1;
	}
	return smtp_params(arena, cmd, s, len, pos, error_r);
}

/* The end of a BDAT or BURL command from s[pos]: nothing, or the word LAST (sets cmd->last).
 * 0, or -1 for anything else. */
static int smtp_parse_last(struct smtp_command *cmd, const char *s, size_t len, size_t pos)
{
	size_t tlen;
	const char *tok = smtp_token(s, len, &pos, &tlen);
	if (tlen > 0) {
		if (!smtp_word_eq(tok, tlen, "LAST"))
			return -1;
		cmd->last = true;
	}
	return pos == len ? 0 : -1;
}

/* BDAT chunk-size [LAST] (RFC 3030 §2). */
static int smtp_parse_bdat(struct smtp_command *cmd, const char *s, size_t len,
                           const char **error_r)
{
	size_t pos = 0, tlen;
	const char *tok = smtp_token(s, len, &pos, &tlen);
	if (smtp_parse_number(tok, tlen, &cmd->chunk_size) == 0 &&
	    smtp_parse_last(cmd, s, len, pos) == 0)
		return 0;
	*error_r = smtp_verbs[SMTP_VERB_BDAT].syntax;
	return -1;
}

/* BURL absolute-URI [SP "LAST"] (RFC 4468 §3.2): the URL is one token, checked later. */
static int smtp_parse_burl(struct arena *arena, struct smtp_command *cmd, const char *s, size_t len,
                           const char **error_r)
{
	size_t pos = 0, tlen;
	const char *tok = smtp_token(s, len, &pos, &tlen);
	if (tlen > 0 && smtp_parse_last(cmd, s, len, pos) == 0) {
		cmd->url = arena_strndup(arena, tok, tlen);
		return 0;
	}
	*error_r = smtp_verbs[SMTP_VERB_BURL].syntax;
	return -1;
}

/* AUTH mechanism [initial-response] (RFC 4954 §4). */
static int smtp_parse_auth(struct arena *arena, struct smtp_command *cmd, const char *s, size_t len,
                           const char **error_r)
{
	size_t pos = 0, mlen, rlen;
	const char *mech = smtp_token(s, len, &pos, &mlen);
	if (mlen == 0 || mlen > SMTP_PARSER_MECHANISM_MAX)
		goto fail;
	char *upper = arena_strndup(arena, mech, mlen);
	for (size_t i = 0; i < mlen; i++) {
		unsigned char c = (unsigned char)upper[i];
		if (c >= 'a' && c <= 'z')
			upper[i] = (char)(c - 'a' + 'A');
		else if (!smtp_is_alpha(c) && !smtp_is_digit(c) && c != '-' && c != '_')
			goto fail;
	}
	cmd->mechanism = upper;
	const char *resp = smtp_token(s, len, &pos, &rlen);
	if (pos != len)
		goto fail;
	if (rlen > 0)
		cmd->initial_response = arena_strndup(arena, resp, rlen);
	return 0;
fail:
	cmd->mechanism = NULL;
	*error_r = smtp_verbs[SMTP_VERB_AUTH].syntax;
	return -1;
}

static enum smtp_verb smtp_lookup_verb(const char *s, size_t len)
{
	for (int v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
		if (smtp_word_eq(s, len, smtp_verbs[v].name))
			return (enum smtp_verb)v;
	}
	return SMTP_VERB_UNKNOWN;
}

static int smtp_parse_args(struct arena *arena, struct smtp_command *cmd, const char *arg,
                           size_t alen, const char **error_r)
{
	const struct smtp_verb_def *def = &smtp_verbs[cmd->verb];
	switch (def->args) {
	case SMTP_ARGS_NONE:
	case SMTP_ARGS_REQUIRED:
		if ((alen == 0) != (def->args == SMTP_ARGS_NONE)) {
			*error_r = def->syntax;
			return -1;
		}
		if ((cmd->verb == SMTP_VERB_HELO || cmd->verb == SMTP_VERB_EHLO) &&
		    !smtp_parser_helo_valid(arg, alen)) {
			*error_r = SMTP_ERR_HELO_INVALID;
			return -1;
		}
		return 0;
	case SMTP_ARGS_ANY:
		return 0;
	case SMTP_ARGS_OWN:
		break;
	}
	switch (cmd->verb) {
	case SMTP_VERB_MAIL:
	case SMTP_VERB_RCPT:
		return smtp_parse_mail_rcpt(arena, cmd, arg, alen, error_r);
	case SMTP_VERB_BDAT:
		return smtp_parse_bdat(cmd, arg, alen, error_r);
	case SMTP_VERB_BURL:
		return smtp_parse_burl(arena, cmd, arg, alen, error_r);
	default:
		return smtp_parse_auth(arena, cmd, arg, alen, error_r);
	}
}

int smtp_parser_parse(struct arena *arena, const char *line, size_t len, struct smtp_command *cmd_r,
                      const char **error_r)
{
	memset(cmd_r, 0, sizeof(*cmd_r));
	cmd_r->arg = "";
	/* RFC 5321 §2.3.8: CR and LF only as the line end; NUL never (smuggling, C strings). */
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n') {
			*error_r = SMTP_ERR_UNRECOGNIZED;
			return -1;
		}
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	size_t vlen = 0, pos;
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	enum smtp_verb verb = smtp_lookup_verb(line, vlen);
	if (verb == SMTP_VERB_UNKNOWN) {
		*error_r = SMTP_ERR_UNRECOGNIZED;
		return -1;
	}
	for (pos = vlen; pos < len && line[pos] == ' ';)
		pos++;
	cmd_r->verb = verb;
	cmd_r->arg = arena_strndup(arena, line + pos, len - pos);
	if (smtp_parse_args(arena, cmd_r, cmd_r->arg, len - pos, error_r) < 0) {
		const char *arg = cmd_r->arg;
		memset(cmd_r, 0, sizeof(*cmd_r));
		cmd_r->verb = verb;
		cmd_r->arg = arg;
		return -1;
	}
	return 0;
}
