/* rspamd's /checkv2 exchange (see rspamd_proto.h): the request head, and the response read
 * in two steps, the HTTP framing by hand (status, Content-Length, no chunking, no
 * compression: we ask for neither) and the JSON body with jansson. */
#include "smtp/rspamd_proto.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/banned.h"

static const char *const rspamd_actions[] = {
    [RSPAMD_NO_ACTION] = "no action",     [RSPAMD_GREYLIST] = "greylist",
    [RSPAMD_ADD_HEADER] = "add header",   [RSPAMD_REWRITE_SUBJECT] = "rewrite subject",
    [RSPAMD_SOFT_REJECT] = "soft reject", [RSPAMD_REJECT] = "reject",
    [RSPAMD_DISCARD] = "discard",         [RSPAMD_QUARANTINE] = "quarantine",
};

const char *rspamd_action_name(enum rspamd_action action)
{
	return (unsigned)action < sizeof(rspamd_actions) / sizeof(rspamd_actions[0])
	           ? rspamd_actions[action]
	           : "?";
}

/* One request field "Name: value CRLF"; control characters in value become '?'. */
static int rspamd_field(struct buf *out, const char *name, const char *value)
{
	int r = buf_puts(out, name) | buf_append(out, ": ", 2);
	for (const char *p = value; *p != '\0' && r == 0; p++) {
		char ch = (unsigned char)*p < ' ' || *p == 127 ? '?' : *p;
		r = buf_append(out, &ch, 1);
	}
	return r == 0 ? buf_append(out, "\r\n", 2) : -1;
}

int rspamd_proto_request(struct buf *out, const struct rspamd_request_head *h)
{
	/* HTTP/1.0: the reply is never chunked, and the connection ends after it. */
	int r = buf_printf(out, "POST %s/checkv2 HTTP/1.0\r\nContent-Length: %zu\r\n", h->path,
	                   h->body_len);
	r |= rspamd_field(out, "Host", h->host);
	r |= rspamd_field(out, "Ip", h->client_ip);
	if (h->helo != NULL && h->helo[0] != '\0')
		r |= rspamd_field(out, "Helo", h->helo);
	if (h->hostname != NULL)
		r |= rspamd_field(out, "Hostname", h->hostname);
	r |= rspamd_field(out, "From", h->mail_from[0] != '\0' ? h->mail_from : "<>");
	for (size_t i = 0; i < h->rcpt_count; i++)
		r |= rspamd_field(out, "Rcpt", h->rcpts[i]);
	r |= rspamd_field(out, "Queue-Id", h->queue_id);
	if (h->user != NULL && h->user[0] != '\0')
		r |= rspamd_field(out, "User", h->user);
	r |= rspamd_field(out, "MTA-Name", h->mta_name);
	r |= buf_append(out, "\r\n", 2);
	return r == 0 ? 0 : -1;
}

/* ---- the HTTP framing ---- */

/* Does the field line [p, end) have this name (any case)? *value_r: its value, trimmed. */
static bool rspamd_http_field(const char *p, const char *end, const char *name,
                              const char **value_r, size_t *len_r)
{
	size_t n = strlen(name);
	if ((size_t)(end - p) <= n || p[n] != ':' || strncasecmp(p, name, n) != 0)
		return false;
	p += n + 1;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*value_r = p;
	*len_r = (size_t)(end - p);
	return true;
}

/* Digits only, with an overflow check before each one. */
static int rspamd_parse_length(const char *p, size_t n, size_t *r)
{
	size_t v = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (SIZE_MAX - 9) / 10)
			return -1;
		v = v * 10 + (size_t)(p[i] - '0');
	}
	*r = v;
	return 0;
}

/* The status line and fields of p[0..head_len) (the empty line excluded): 0 with the
 * Content-Length (SIZE_MAX: none), or -1. */
static int rspamd_http_head(const char *p, size_t head_len, size_t *length_r, const char **error_r)
{
	const char *end = p + head_len;
	const char *eol = memchr(p, '\n', head_len);
	if (eol == NULL)
		eol = end;
	if (head_len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') {
		*error_r = "not an HTTP response";
		return -1;
	}
	if (memcmp(p + 9, "200", 3) != 0 || (p + 12 < eol && p[12] != ' ' && p[12] != '\r')) {
		*error_r = "HTTP status is not 200";
		return -1;
	}
	*length_r = SIZE_MAX;
	while (eol < end) {
		const char *line = eol + 1;
		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		const char *line_end = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
		const char *v;
		size_t vl;
		if (rspamd_http_field(line, line_end, "Content-Length", &v, &vl)) {
			if (rspamd_parse_length(v, vl, length_r) < 0) {
				*error_r = "bad Content-Length";
				return -1;
			}
		} else if ((rspamd_http_field(line, line_end, "Transfer-Encoding", &v, &vl) ||
		            rspamd_http_field(line, line_end, "Content-Encoding", &v, &vl) ||
		            rspamd_http_field(line, line_end, "Compression", &v, &vl)) &&
		           !(vl == 8 && strncasecmp(v, "identity", 8) == 0)) {
			*error_r = "the response is chunked or compressed";
			return -1;
		}
	}
	return 0;
}

/* ---- the JSON body ---- */

/* A copy of s in a: one line of printable text (control characters become spaces; with
 * ascii, they and octets from 0x80 become '?', so that the text is ASCII and can be cut
 * anywhere), at most max octets. */
static const char *rspamd_line_dup(struct arena *a, const char *s, size_t max, bool ascii)
{
	size_t n = strlen(s);
	if (n > max)
		n = max;
	char *d = arena_strndup(a, s, n);
	for (char *p = d; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || *p == 127 || (ascii && (unsigned char)*p >= 0x80))
			*p = ascii ? '?' : ' ';
	return d;
}

/* Does the line from p (to the next LF or the end) hold a visible character? Controls and
 * DEL are not: rspamd_value_dup() makes them spaces. */
static bool rspamd_line_visible(const char *p, const char *end)
{
	for (; p < end && *p != '\n'; p++)
		if ((unsigned char)*p > ' ' && *p != 127)
			return true;
	return false;
}

/* s (LF folds, no CR) folded for a field whose name is name_len octets: a line longer than
 * RSPAMD_FOLD_AT octets is broken before white space after that point, and one that reaches
 * RSPAMD_LINE_MAX octets without white space gets a fold (LF SP) inserted, so that no line
 * of the field is longer than RFC 5322 §2.1.1's 998 octets. */
static const char *rspamd_fold(struct arena *a, const char *s, size_t name_len)
{
	size_t n = strlen(s);
	char *d = arena_alloc(a, 2 * n + 2), *o = d;
	size_t col = name_len + 2; /* "Name: " */
	bool vis = true;           /* the line so far has a visible character */
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '\n') {
			*o++ = ch;
			col = 0;
			vis = false;
			continue;
		}
		bool wsp = ch == ' ' || ch == '\t';
		if (wsp && col > RSPAMD_FOLD_AT && vis && rspamd_line_visible(s + i, s + n)) {
			*o++ = '\n';
			col = 0;
			vis = false;
		} else if (wsp && col >= RSPAMD_LINE_MAX) {
			continue; /* a long run of white space: the rest of it is dropped */
		} else if (col >= RSPAMD_LINE_MAX && vis) {
			*o++ = '\n';
			*o++ = ' ';
			col = 1;
		}
		*o++ = ch;
		col++;
		vis = vis || !wsp;
	}
	*o = '\0';
	return d;
}

/* A header value made safe (see struct rspamd_header_add), or NULL when too long. */
static const char *rspamd_value_dup(struct arena *a, const char *s, size_t name_len)
{
	size_t n = strlen(s);
	if (n > RSPAMD_VALUE_MAX)
		return NULL;
	char *d = arena_alloc(a, n + 1), *o = d;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '\r')
			continue;
		if (ch == '\n') {
			/* A fold only when white space follows, then a visible character on that
			 * line (RFC 5322 §3.2.2: no line of white space alone), and something
			 * before it; else a space. */
			size_t j = i + 1;
			while (j < n && s[j] == '\r')
				j++;
			bool fold = j < n && (s[j] == ' ' || s[j] == '\t') && o > d &&
			            rspamd_line_visible(s + j, s + n);
			*o++ = fold ? '\n' : ' ';
			continue;
		}
		*o++ = ((unsigned char)ch < ' ' && ch != '\t') || ch == 127 ? ' ' : ch;
	}
	while (o > d && (o[-1] == ' ' || o[-1] == '\t' || o[-1] == '\n'))
		o--;
	*o = '\0';
	return rspamd_fold(a, d, name_len);
}

/* A field name: 1 to 200 printable ASCII octets without ':' (RFC 5322 §3.6.8). */
static bool rspamd_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 200)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 127 || s[i] == ':')
			return false;
	return true;
}

/* One addition: value is a string, or an object with "value" and an optional "order". */
static void rspamd_add_one(struct arena *a, struct rspamd_verdict *v, const char *name,
                           json_t *value)
{
	json_t *order = NULL;
	if (json_is_object(value)) {
		order = json_object_get(value, "order");
		value = json_object_get(value, "value");
	}
	if (!json_is_string(value) || v->add_count == RSPAMD_HEADERS_MAX)
		return;
	const char *text = rspamd_value_dup(a, json_string_value(value), strlen(name));
	if (text == NULL)
		return;
	struct rspamd_header_add *h = &v->add[v->add_count++];
	*h = (struct rspamd_header_add){.name = arena_strdup(a, name), .value = text};
	if (json_is_integer(order) && json_integer_value(order) >= 0 &&
	    json_integer_value(order) <= 100000) {
		h->has_order = true;
		h->order = (unsigned)json_integer_value(order);
	}
}

static void rspamd_milter_block(struct arena *a, struct rspamd_verdict *v, json_t *milter)
{
	json_t *add = json_object_get(milter, "add_headers");
	json_t *remove = json_object_get(milter, "remove_headers");
	const char *name;
	json_t *value;
	v->add = arena_alloc(a, RSPAMD_HEADERS_MAX * sizeof(*v->add));
	v->remove = arena_alloc(a, RSPAMD_HEADERS_MAX * sizeof(*v->remove));
	if (json_is_object(add))
		json_object_foreach(add, name, value)
		{
			if (!rspamd_name_ok(name))
				continue;
			if (json_is_array(value)) {
				size_t i;
				json_t *item;
				json_array_foreach(value, i, item) rspamd_add_one(a, v, name, item);
			} else
				rspamd_add_one(a, v, name, value);
		}
	if (json_is_object(remove))
		json_object_foreach(remove, name, value)
		{
			if (!rspamd_name_ok(name) || !json_is_integer(value) ||
			    v->remove_count == RSPAMD_HEADERS_MAX)
				continue;
			json_int_t index = json_integer_value(value);
			if (index < -100000 || index > 100000)
				continue;
			v->remove[v->remove_count++] = (struct rspamd_header_remove){
			    .name = arena_strdup(a, name), .index = (long)index};
		}
}

static double rspamd_number(json_t *n)
{
	double d = json_is_number(n) ? json_number_value(n) : 0.0;
	return isfinite(d) ? d : 0.0;
}

static void rspamd_symbols(struct arena *a, struct rspamd_verdict *v, json_t *symbols)
{
	const char *name;
	json_t *value;
	v->symbols = arena_alloc(a, RSPAMD_SYMBOLS_MAX * sizeof(*v->symbols));
	json_object_foreach(symbols, name, value)
	{
		if (v->symbol_count == RSPAMD_SYMBOLS_MAX)
			break;
		if (!json_is_object(value) || !rspamd_name_ok(name) || strchr(name, '(') != NULL)
			continue;
		v->symbols[v->symbol_count++] =
		    (struct rspamd_symbol){.name = arena_strdup(a, name),
		                           .score = rspamd_number(json_object_get(value, "score"))};
	}
}

static int rspamd_json(const char *body, size_t len, struct arena *a, struct rspamd_verdict *v,
                       const char **error_r)
{
	json_error_t err;
	json_t *root = json_loadb(body, len, 0, &err);
	if (!json_is_object(root)) {
		json_decref(root);
		*error_r = "the response is not a JSON object";
		return -1;
	}
	json_t *action = json_object_get(root, "action");
	const char *name = json_is_string(action) ? json_string_value(action) : "";
	size_t i = 0;
	while (i < sizeof(rspamd_actions) / sizeof(rspamd_actions[0]) &&
	       strcmp(name, rspamd_actions[i]) != 0)
		i++;
	if (i == sizeof(rspamd_actions) / sizeof(rspamd_actions[0])) {
		json_decref(root);
		*error_r = action == NULL ? "the response has no action" : "unknown action";
		return -1;
	}
	v->action = (enum rspamd_action)i;
	v->score = rspamd_number(json_object_get(root, "score"));
	v->required_score = rspamd_number(json_object_get(root, "required_score"));
	json_t *subject = json_object_get(root, "subject");
	if (json_is_string(subject))
		v->subject = rspamd_fold(
		    a, rspamd_line_dup(a, json_string_value(subject), RSPAMD_VALUE_MAX, false), 7);
	json_t *message = json_object_get(json_object_get(root, "messages"), "smtp_message");
	if (json_is_string(message) && json_string_value(message)[0] != '\0')
		v->message =
		    rspamd_line_dup(a, json_string_value(message), RSPAMD_MESSAGE_MAX, true);
	json_t *symbols = json_object_get(root, "symbols");
	if (json_is_object(symbols))
		rspamd_symbols(a, v, symbols);
	json_t *milter = json_object_get(root, "milter");
	if (json_is_object(milter))
		rspamd_milter_block(a, v, milter);
	json_decref(root);
	return 0;
}

int rspamd_proto_parse(const unsigned char *p, size_t len, bool eof, struct arena *a,
                       struct rspamd_verdict *v, const char **error_r)
{
	*v = (struct rspamd_verdict){0};
	if (len > RSPAMD_REPLY_MAX) {
		*error_r = "the response is larger than the limit";
		return -1;
	}
	const char *s = (const char *)p;
	size_t head = 0, body = 0;
	for (size_t i = 0; i + 1 < len && body == 0; i++) {
		if (s[i] != '\n')
			continue;
		head = i;
		if (s[i + 1] == '\n')
			body = i + 2;
		else if (s[i + 1] == '\r' && i + 2 < len && s[i + 2] == '\n')
			body = i + 3;
	}
	if (body == 0) {
		*error_r = "the response ended early";
		return eof ? -1 : 0;
	}
	size_t length;
	if (rspamd_http_head(s, head, &length, error_r) < 0)
		return -1;
	if (length != SIZE_MAX && length > RSPAMD_REPLY_MAX) {
		*error_r = "the response is larger than the limit";
		return -1;
	}
	if (length == SIZE_MAX) {
		if (!eof)
			return 0;
		length = len - body;
	}
	if (len - body < length) {
		*error_r = "the response ended early";
		return eof ? -1 : 0;
	}
	return rspamd_json(s + body, length, a, v, error_r) < 0 ? -1 : 1;
}
