/* ENVELOPE / BODY / BODYSTRUCTURE writer (see imap_structure.h). Everything is appended to
 * one struct buf per call and copied into the arena at the end; the grammar is RFC 9051
 * §9 (body, body-type-1part, body-type-mpart, body-ext-*, envelope, address). */
#include "mime/imap_structure.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/mime_preview.h"
#include "mime/rfc822_addr.h"
#include "core/banned.h"

#define IMAP_STRUCTURE_BUF_MAX (SIZE_MAX / 4)
/* More quoted-specials than this and a literal is shorter (Dovecot's choice). */
#define IMAP_STRUCTURE_MAX_ESCAPES 4

static void is_put(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) < 0)
		log_panic("imap_structure: builder overflow");
}

static void is_puts(struct buf *b, const char *s)
{
	is_put(b, s, strlen(s));
}

static void is_literal(struct buf *b, const char *s, size_t n)
{
	char head[32];
	int hn = snprintf(head, sizeof(head), "{%zu}\r\n", n);
	is_put(b, head, (size_t)hn);
	is_put(b, s, n);
}

void imap_structure_append_string(struct buf *b, const char *s)
{
	unsigned escapes = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		bool special = *p == '"' || *p == '\\';
		if (*p == '\r' || *p == '\n' || *p >= 0x80 ||
		    (special && ++escapes > IMAP_STRUCTURE_MAX_ESCAPES)) {
			is_literal(b, s, strlen(s));
			return;
		}
	}
	is_put(b, "\"", 1);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			is_put(b, "\\", 1);
		is_put(b, p, 1);
	}
	is_put(b, "\"", 1);
}

static void is_nstring(struct buf *b, const char *s)
{
	if (s == NULL)
		is_puts(b, "NIL");
	else
		imap_structure_append_string(b, s);
}

static bool is_wsp_or_nl(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* nstring without CR/LF: a line break not followed by WSP (or the end) becomes one SP. */
static void is_nstring_nolf(struct buf *b, const char *s)
{
	if (s == NULL || strpbrk(s, "\r\n") == NULL) {
		is_nstring(b, s);
		return;
	}
	struct buf t;
	buf_init(&t, IMAP_STRUCTURE_BUF_MAX);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p != '\r' && *p != '\n')
			is_put(&t, p, 1);
		else if (p[1] != '\0' && !is_wsp_or_nl(p[1]))
			is_put(&t, " ", 1);
	}
	imap_structure_append_string(b, t.len > 0 ? t.data : "");
	buf_free(&t);
}

/* Text for humans (Subject, display names): whitespace runs folded to one SP and trimmed;
 * sent quoted only when nothing had to change and there is nothing to escape. */
static void is_humans(struct buf *b, const char *s)
{
	bool modify = false, last_ws = true;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (is_wsp_or_nl((char)*p)) {
			if (*p != ' ' || last_ws)
				modify = true;
			last_ws = true;
		} else {
			if (*p == '"' || *p == '\\' || *p >= 0x80)
				modify = true;
			last_ws = false;
		}
	}
	if (last_ws && *s != '\0')
		modify = true; /* trailing whitespace (or only whitespace) */
	if (!modify) {
		is_put(b, "\"", 1);
		is_puts(b, s);
		is_put(b, "\"", 1);
		return;
	}
	struct buf t;
	buf_init(&t, IMAP_STRUCTURE_BUF_MAX);
	last_ws = true;
	for (const char *p = s; *p != '\0'; p++) {
		if (!is_wsp_or_nl(*p)) {
			is_put(&t, p, 1);
			last_ws = false;
		} else if (!last_ws) {
			is_put(&t, " ", 1);
			last_ws = true;
		}
	}
	if (t.len > 0 && last_ws)
		t.len--;
	if (t.len == 0)
		is_puts(b, "\"\"");
	else
		is_literal(b, t.data, t.len);
	buf_free(&t);
}

/* ---- ENVELOPE ---- */

enum is_env_field {
	IS_ENV_DATE,
	IS_ENV_SUBJECT,
	IS_ENV_FROM,
	IS_ENV_SENDER,
	IS_ENV_REPLY_TO,
	IS_ENV_TO,
	IS_ENV_CC,
	IS_ENV_BCC,
	IS_ENV_IN_REPLY_TO,
	IS_ENV_MESSAGE_ID,
	IS_ENV_COUNT,
};

static const char *const is_env_names[IS_ENV_COUNT] = {
    "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id",
};

static void is_address_list(struct buf *b, const struct rfc822_address *a)
{
	if (a == NULL) {
		is_puts(b, "NIL");
		return;
	}
	is_put(b, "(", 1);
	for (; a != NULL; a = a->next) {
		is_put(b, "(", 1);
		if (a->name == NULL)
			is_puts(b, "NIL");
		else
			is_humans(b, a->name);
		is_put(b, " ", 1);
		is_nstring(b, a->route);
		is_put(b, " ", 1);
		is_nstring(b, a->mailbox);
		is_put(b, " ", 1);
		is_nstring(b, a->domain);
		is_put(b, ")", 1);
	}
	is_put(b, ")", 1);
}

/* One envelope address list being built: appends are O(new addresses), never a walk from
 * the head, so 100,000 repeated To: fields cost linear time (Dovecot's CVE-2024-23184 was
 * this quadratic walk); past IMAP_STRUCTURE_ADDRESSES_MAX the rest is dropped. */
struct is_addr_list {
	struct rfc822_address *head, **tail;
	size_t count;
};

/* Append list (repeated address fields add up, as in Dovecot). */
static void is_address_append(struct is_addr_list *l, struct rfc822_address *list)
{
	if (l->tail == NULL)
		l->tail = &l->head;
	for (; list != NULL && l->count < IMAP_STRUCTURE_ADDRESSES_MAX; list = list->next) {
		*l->tail = list;
		l->tail = &list->next;
		l->count++;
	}
	*l->tail = NULL;
}

static void is_envelope(struct arena *arena, struct buf *b, const unsigned char *msg,
                        const struct mime_part *part)
{
	char *val[IS_ENV_COUNT] = {NULL}; /* the string fields */
	struct is_addr_list lists[IS_ENV_COUNT] = {{NULL, NULL, 0}};
	struct rfc822_address *addr[IS_ENV_COUNT] = {NULL};
	struct mime_field_iter it;
	struct mime_field f;
	size_t len;
	mime_field_iter_init(&it, msg, part->header_start, part->header_start + part->header_len);
	while (mime_field_iter_next(&it, &f)) {
		for (int i = 0; i < IS_ENV_COUNT; i++) {
			if (!mime_field_is(msg, &f, is_env_names[i]))
				continue;
			/* a repeated field: the last one counts, but addresses add up (Dovecot) */
			if (i >= IS_ENV_FROM && i <= IS_ENV_BCC) {
				if (lists[i].count >= IMAP_STRUCTURE_ADDRESSES_MAX)
					break; /* full: do not even parse the rest */
				char *v = mime_field_value_raw(arena, msg, &f, &len);
				is_address_append(
				    &lists[i],
				    rfc822_addr_parse_list(arena, (const unsigned char *)v, len));
			} else {
				val[i] = mime_field_value(arena, msg, &f, NULL);
			}
			break;
		}
	}
	for (int i = 0; i < IS_ENV_COUNT; i++)
		addr[i] = lists[i].head;
	if (addr[IS_ENV_SENDER] == NULL)
		addr[IS_ENV_SENDER] = addr[IS_ENV_FROM];
	if (addr[IS_ENV_REPLY_TO] == NULL)
		addr[IS_ENV_REPLY_TO] = addr[IS_ENV_FROM];
	is_put(b, "(", 1);
	is_nstring_nolf(b, val[IS_ENV_DATE]);
	is_put(b, " ", 1);
	if (val[IS_ENV_SUBJECT] == NULL)
		is_puts(b, "NIL");
	else
		is_humans(b, val[IS_ENV_SUBJECT]);
	for (int i = IS_ENV_FROM; i <= IS_ENV_BCC; i++) {
		is_put(b, " ", 1);
		is_address_list(b, addr[i]);
	}
	is_put(b, " ", 1);
	is_nstring_nolf(b, val[IS_ENV_IN_REPLY_TO]);
	is_put(b, " ", 1);
	is_nstring_nolf(b, val[IS_ENV_MESSAGE_ID]);
	is_put(b, ")", 1);
}

static char *is_finish(struct arena *arena, struct buf *b)
{
	char *s = arena_strndup(arena, b->len > 0 ? b->data : "", b->len);
	buf_free(b);
	return s;
}

char *imap_envelope(struct arena *arena, const unsigned char *msg, size_t len,
                    const struct mime_part *part)
{
	struct buf b;
	ASSERT(part->header_start + part->header_len <= len);
	buf_init(&b, IMAP_STRUCTURE_BUF_MAX);
	is_envelope(arena, &b, msg, part);
	return is_finish(arena, &b);
}

/* ---- BODY / BODYSTRUCTURE ---- */

#define IS_EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"

struct is_ctx {
	struct arena *arena;
	const unsigned char *msg;
	struct buf *b;
	bool extended;
};

static void is_params(struct buf *b, const struct mime_param *p, size_t n, bool default_charset)
{
	bool charset = false;
	if (n == 0 && !default_charset) {
		is_puts(b, "NIL");
		return;
	}
	is_put(b, "(", 1);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			is_put(b, " ", 1);
		charset = charset || strcasecmp(p[i].name, "charset") == 0;
		imap_structure_append_string(b, p[i].name);
		is_put(b, " ", 1);
		imap_structure_append_string(b, p[i].value);
	}
	if (default_charset && !charset)
		is_puts(b, n > 0 ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
	is_put(b, ")", 1);
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void is_ext_common(struct buf *b, const struct mime_part *p)
{
	is_put(b, " ", 1);
	if (p->disposition == NULL) {
		is_puts(b, "NIL");
	} else {
		is_put(b, "(", 1);
		imap_structure_append_string(b, p->disposition);
		is_put(b, " ", 1);
		is_params(b, p->disposition_params, p->disposition_param_count, false);
		is_put(b, ")", 1);
	}
	is_put(b, " ", 1);
	if (p->language_count == 0) {
		is_puts(b, "NIL");
	} else {
		is_put(b, "(", 1);
		for (size_t i = 0; i < p->language_count; i++) {
			if (i > 0)
				is_put(b, " ", 1);
			imap_structure_append_string(b, p->languages[i]);
		}
		is_put(b, ")", 1);
	}
	is_put(b, " ", 1);
	is_nstring_nolf(b, p->location);
}

static void is_body(struct is_ctx *x, const struct mime_part *p);

static void is_multipart(struct is_ctx *x, const struct mime_part *p)
{
	struct buf *b = x->b;
	if (p->child_count == 0)
		is_puts(b, x->extended ? IS_EMPTY_BODY " NIL NIL NIL NIL)" : IS_EMPTY_BODY ")");
	for (size_t i = 0; i < p->child_count; i++)
		is_body(x, &p->children[i]);
	is_put(b, " ", 1);
	imap_structure_append_string(b, p->subtype_raw != NULL ? p->subtype_raw : p->subtype);
	if (!x->extended)
		return;
	is_put(b, " ", 1);
	is_params(b, p->params, p->param_count, false);
	is_ext_common(b, p);
}

/* Writes media type and subtype; returns whether the part is text (has a line count). */
static bool is_media_type(struct buf *b, const struct mime_part *p)
{
	if (p->kind == MIME_KIND_MESSAGE) {
		is_puts(b, "\"message\" \"rfc822\"");
		return false;
	}
	if (p->type_raw == NULL) {
		is_puts(b, "\"text\" \"plain\"");
		return true;
	}
	if (strcmp(p->type, "multipart") == 0 ||
	    (strcmp(p->type, "message") == 0 && strcmp(p->subtype, "rfc822") == 0)) {
		/* a container not opened because of a limit: written as opaque data, as Dovecot
		 * does (a basic "message" "rfc822" would also break the grammar) */
		is_puts(b, "\"application\" \"octet-stream\"");
		return false;
	}
	imap_structure_append_string(b, p->type_raw);
	is_put(b, " ", 1);
	imap_structure_append_string(b, p->subtype_raw);
	return strcmp(p->type, "text") == 0;
}

static void is_single(struct is_ctx *x, const struct mime_part *p)
{
	struct buf *b = x->b;
	char num[32];
	bool text = is_media_type(b, p);
	is_put(b, " ", 1);
	is_params(b, p->params, p->param_count, text);
	is_put(b, " ", 1);
	is_nstring_nolf(b, p->id);
	is_put(b, " ", 1);
	is_nstring_nolf(b, p->description);
	is_put(b, " ", 1);
	if (p->encoding != NULL)
		imap_structure_append_string(b, p->encoding);
	else
		is_puts(b, "\"7bit\"");
	int n = snprintf(num, sizeof(num), " %zu", p->body_size);
	is_put(b, num, (size_t)n);
	if (p->kind == MIME_KIND_MESSAGE) {
		is_put(b, " ", 1);
		is_envelope(x->arena, b, x->msg, p->message);
		is_put(b, " ", 1);
		is_body(x, p->message);
	}
	if (text || p->kind == MIME_KIND_MESSAGE) {
		n = snprintf(num, sizeof(num), " %u", p->body_lines);
		is_put(b, num, (size_t)n);
	}
	if (!x->extended)
		return;
	is_put(b, " ", 1);
	is_nstring_nolf(b, p->md5);
	is_ext_common(b, p);
}

static void is_body(struct is_ctx *x, const struct mime_part *p)
{
	is_put(x->b, "(", 1);
	if (p->kind == MIME_KIND_MULTIPART)
		is_multipart(x, p);
	else
		is_single(x, p);
	is_put(x->b, ")", 1);
}

char *imap_bodystructure(struct arena *arena, const unsigned char *msg, size_t len,
                         const struct mime_part *root, bool extended)
{
	struct buf b;
	struct is_ctx x = {.arena = arena, .msg = msg, .b = &b, .extended = extended};
	ASSERT(root->body_start + root->body_len <= len);
	buf_init(&b, IMAP_STRUCTURE_BUF_MAX);
	is_body(&x, root);
	return is_finish(arena, &b);
}

int imap_structure_summarize(void *ctx, const char *path, char **envelope_r, char **body_r,
                             char **bodystructure_r, char **preview_r)
{
	(void)ctx;
	*envelope_r = *body_r = *bodystructure_r = *preview_r = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return -1;
	}
	size_t len = (size_t)st.st_size;
	const unsigned char *msg = (const unsigned char *)"";
	void *map = NULL;
	if (len > 0) {
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			close(fd);
			return -1;
		}
		msg = map;
	}
	close(fd);
	struct arena *a = arena_new(16384);
	struct mime_part *root;
	struct mime_limits limits = {0};
	if (mime_parse(a, msg, len, &limits, &root) < -1) /* -1 (a limit): the tree is usable */
		root = NULL;
	if (root != NULL) {
		*envelope_r = xstrdup(imap_envelope(a, msg, len, root));
		*body_r = xstrdup(imap_bodystructure(a, msg, len, root, false));
		*bodystructure_r = xstrdup(imap_bodystructure(a, msg, len, root, true));
		*preview_r = xstrdup(mime_preview(a, msg, len, root));
	}
	arena_free(&a);
	if (map != NULL)
		munmap(map, len);
	return 0;
}
