/* The milter protocol's packets (see milter_proto.h). */
#include "smtp/milter_proto.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/xmalloc.h"
#include "mime/dkim_canon.h"
#include "core/banned.h"

static void milter_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t milter_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int milter_put(struct buf *out, char cmd, const void *data, size_t n)
{
	if (n > MILTER_CHUNK_MAX + 1024)
		return -1;
	unsigned char head[5];
	milter_u32(head, (uint32_t)n + 1);
	head[4] = (unsigned char)cmd;
	size_t mark = out->len;
	if (buf_append(out, head, 5) < 0 || (n > 0 && buf_append(out, data, n) < 0)) {
		out->len = mark;
		return -1;
	}
	return 0;
}

int milter_put_strings(struct buf *out, char cmd, const char *const *strings, size_t count)
{
	struct buf data;
	buf_init(&data, MILTER_CHUNK_MAX);
	int r = 0;
	for (size_t i = 0; i < count && r == 0; i++)
		r = buf_append(&data, strings[i], strlen(strings[i]) + 1);
	r = r == 0 ? milter_put(out, cmd, data.data, data.len) : -1;
	buf_free(&data);
	return r;
}

int milter_put_optneg(struct buf *out)
{
	unsigned char d[12];
	milter_u32(d, MILTER_VERSION);
	milter_u32(d + 4, MILTER_ACTIONS);
	milter_u32(d + 8, MILTER_PROTOCOL);
	return milter_put(out, MILTER_CMD_OPTNEG, d, sizeof(d));
}

int milter_put_connect(struct buf *out, const char *hostname, bool ipv6, uint16_t port,
                       const char *address)
{
	struct buf data;
	buf_init(&data, 2048);
	unsigned char fam_port[3] = {ipv6 ? '6' : '4', (unsigned char)(port >> 8),
	                             (unsigned char)port};
	int r = buf_append(&data, hostname, strlen(hostname) + 1) | buf_append(&data, fam_port, 3) |
	        buf_append(&data, address, strlen(address) + 1);
	r = r == 0 ? milter_put(out, MILTER_CMD_CONNECT, data.data, data.len) : -1;
	buf_free(&data);
	return r;
}

/* The next NUL-terminated string of d[*pos..n): its start, or NULL when there is none. */
static const char *milter_string(const unsigned char *d, size_t n, size_t *pos)
{
	if (*pos >= n)
		return NULL;
	const unsigned char *nul = memchr(d + *pos, '\0', n - *pos);
	if (nul == NULL)
		return NULL;
	const char *s = (const char *)d + *pos;
	*pos = (size_t)(nul - d) + 1;
	return s;
}

int milter_parse_reply(const unsigned char *p, size_t len, struct milter_reply *r, size_t *used_r)
{
	if (len < 4)
		return 0;
	uint32_t n = milter_get_u32(p);
	if (n == 0 || n > MILTER_REPLY_MAX)
		return -1;
	if (len - 4 < n)
		return 0;
	memset(r, 0, sizeof(*r));
	r->cmd = (char)p[4];
	const unsigned char *d = p + 5;
	size_t dn = n - 1, pos = 0;
	*used_r = 4 + (size_t)n;
	switch (r->cmd) {
	case MILTER_REPLY_OPTNEG:
		if (dn < 12)
			return -1;
		r->version = milter_get_u32(d);
		r->actions = milter_get_u32(d + 4);
		r->protocol = milter_get_u32(d + 8);
		return 1;
	case MILTER_REPLY_INSHEADER:
	case MILTER_REPLY_CHGHEADER:
		if (dn < 4)
			return -1;
		r->index = milter_get_u32(d);
		pos = 4;
		/* fall through */
	case MILTER_REPLY_ADDHEADER:
		r->name = milter_string(d, dn, &pos);
		r->value = milter_string(d, dn, &pos);
		return r->name != NULL && r->value != NULL && r->name[0] != '\0' ? 1 : -1;
	case MILTER_REPLY_REPLYCODE:
	case MILTER_REPLY_QUARANTINE:
		r->text = milter_string(d, dn, &pos);
		return r->text != NULL ? 1 : -1;
	case MILTER_REPLY_ACCEPT:
	case MILTER_REPLY_CONTINUE:
	case MILTER_REPLY_DISCARD:
	case MILTER_REPLY_REJECT:
	case MILTER_REPLY_TEMPFAIL:
	case MILTER_REPLY_PROGRESS:
	case MILTER_REPLY_SKIP:
		return 1;
	default:
		return -1; /* body replacement, recipient changes: we never offered them */
	}
}

bool milter_replycode_ok(const char *t)
{
	if ((t[0] != '4' && t[0] != '5') || t[1] < '0' || t[1] > '9' || t[2] < '0' || t[2] > '9' ||
	    (t[3] != ' ' && t[3] != '-' && t[3] != '\0'))
		return false;
	size_t n = strlen(t);
	return n < 512 && strpbrk(t, "\r\n") == NULL;
}

/* ---- header changes ---- */

struct milter_item {
	const unsigned char *p; /* the field with its CRLF */
	size_t len;
	char *owned; /* a field we wrote (p points into it) */
	bool rest;   /* the fields beyond MILTER_FIELDS_MAX: matches no name */
};

struct milter_items {
	struct milter_item *v;
	size_t n, cap;
};

static void milter_items_insert(struct milter_items *it, size_t at, struct milter_item item)
{
	if (it->n == it->cap) {
		it->cap = it->cap == 0 ? 32 : 2 * it->cap;
		it->v = xrealloc(it->v, it->cap * sizeof(*it->v));
	}
	if (at > it->n)
		at = it->n;
	memmove(&it->v[at + 1], &it->v[at], (it->n - at) * sizeof(*it->v));
	it->v[at] = item;
	it->n++;
}

/* "Name: value\r\n" with the value's line ends made CRLF. */
static struct milter_item milter_field(const char *name, const char *value)
{
	size_t cap = strlen(name) + 2 * strlen(value) + 5, o = 0;
	char *f = xmalloc(cap);
	o += (size_t)(stpcpy(f, name) - f);
	f[o++] = ':';
	if (value[0] != ' ' && value[0] != '\t')
		f[o++] = ' ';
	for (const char *v = value; *v != '\0'; v++) {
		if (*v == '\r')
			continue;
		if (*v == '\n')
			f[o++] = '\r';
		f[o++] = *v;
	}
	f[o++] = '\r';
	f[o++] = '\n';
	return (struct milter_item){.p = (const unsigned char *)f, .len = o, .owned = f};
}

static bool milter_item_named(const struct milter_item *it, const char *name)
{
	size_t n = strlen(name);
	if (it->rest || it->len <= n || strncasecmp((const char *)it->p, name, n) != 0)
		return false;
	size_t i = n;
	while (i < it->len && (it->p[i] == ' ' || it->p[i] == '\t'))
		i++;
	return i < it->len && it->p[i] == ':';
}

static void milter_change(struct milter_items *it, const struct milter_edit *e)
{
	uint32_t seen = 0;
	for (size_t i = 0; i < it->n; i++) {
		if (!milter_item_named(&it->v[i], e->name) || ++seen != e->index)
			continue;
		free(it->v[i].owned);
		if (e->value[0] == '\0') {
			memmove(&it->v[i], &it->v[i + 1], (it->n - i - 1) * sizeof(*it->v));
			it->n--;
		} else {
			it->v[i] = milter_field(e->name, e->value);
		}
		return;
	}
}

/* Every field named name out: free and mark, then close the gaps in one pass. */
static void milter_delete_all(struct milter_items *it, const char *name)
{
	size_t o = 0;
	for (size_t i = 0; i < it->n; i++) {
		if (milter_item_named(&it->v[i], name)) {
			free(it->v[i].owned);
			continue;
		}
		it->v[o++] = it->v[i];
	}
	it->n = o;
}

int milter_edits_apply(const unsigned char *hdr, size_t len, const struct milter_edit *edits,
                       size_t n, struct buf *out)
{
	struct arena *a = arena_new(4096);
	struct dkim_field *fields;
	size_t body;
	size_t nf = dkim_canon_fields(a, hdr, len, MILTER_FIELDS_MAX, &fields, &body);
	struct milter_items it = {0};
	for (size_t i = 0; i < nf; i++)
		milter_items_insert(
		    &it, it.n,
		    (struct milter_item){.p = hdr + fields[i].start, .len = fields[i].len});
	/* Fields beyond MILTER_FIELDS_MAX stay as they are, unchanged and never lost. */
	size_t end = nf > 0 ? fields[nf - 1].start + fields[nf - 1].len : 0;
	if (end < len)
		milter_items_insert(
		    &it, it.n,
		    (struct milter_item){.p = hdr + end, .len = len - end, .rest = true});
	for (size_t i = 0; i < n; i++) {
		const struct milter_edit *e = &edits[i];
		if (e->cmd == MILTER_REPLY_ADDHEADER)
			milter_items_insert(&it, it.n, milter_field(e->name, e->value));
		else if (e->cmd == MILTER_REPLY_INSHEADER)
			milter_items_insert(&it, e->index, milter_field(e->name, e->value));
		else if (e->cmd == MILTER_REPLY_CHGHEADER)
			milter_change(&it, e);
		else if (e->cmd == MILTER_EDIT_DELETE_ALL)
			milter_delete_all(&it, e->name);
	}
	int r = 0;
	for (size_t i = 0; i < it.n; i++) {
		if (r == 0)
			r = buf_append(out, it.v[i].p, it.v[i].len);
		free(it.v[i].owned);
	}
	free(it.v);
	arena_free(&a);
	return r;
}
