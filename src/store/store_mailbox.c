/* IMAP mailboxes over the backend: name validation and normalisation ("INBOX" as the first
 * level is case-insensitive), special-use attributes, keyword lists (validation, canonical
 * spelling per mailbox, add/remove/replace), the LIST view with \Noselect parents and
 * subscribed names, and the read and write entry points of store.h's mailbox section.
 * Nothing here knows a database: backends get normalised names and joined keywords. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_private.h"
#include "core/banned.h"

/* ---- names ---- */

/* Decode one UTF-8 character at s[*i] (len octets in all): its code point, *i advanced; -1
 * for a malformed, overlong or surrogate sequence or one above U+10FFFF. */
static long store_mailbox_utf8(const unsigned char *s, size_t len, size_t *i)
{
	unsigned char c = s[*i];
	size_t n;
	long cp, min;
	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3, cp = c & 0x07, min = 0x10000;
	} else {
		return -1;
	}
	if (len - *i <= n)
		return -1;
	for (size_t k = 1; k <= n; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[*i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n + 1;
	return cp;
}

/* RFC 9051 §5.1: no control characters (C0, DEL, C1); '*' and '%' are LIST wildcards. */
static bool store_mailbox_char_ok(long cp)
{
	return cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f) && cp != '*' && cp != '%';
}

static bool store_mailbox_valid(const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t i = 0, levels = 1, level_len = 0;
	if (len == 0 || len > STORE_MAILBOX_NAME_MAX)
		return false;
	while (i < len) {
		if (s[i] == '/') {
			if (level_len == 0 || ++levels > STORE_MAILBOX_DEPTH_MAX)
				return false;
			level_len = 0;
			i++;
			continue;
		}
		long cp = store_mailbox_utf8(s, len, &i);
		if (cp < 0 || !store_mailbox_char_ok(cp))
			return false;
		level_len++;
	}
	return level_len > 0;
}

int store_mailbox_name_valid(const char *name)
{
	return name != NULL && store_mailbox_valid(name, strlen(name)) ? 1 : 0;
}

int store_mailbox_norm(const char *name, char out[STORE_MAILBOX_NAME_MAX + 1])
{
	size_t len = name == NULL ? 0 : strlen(name);
	if (!store_mailbox_valid(name, len))
		return -1;
	memcpy(out, name, len + 1);
	/* RFC 9051 §5.1: INBOX is case-insensitive, also as the parent of other names. */
	if (len >= 5 && strncasecmp(out, "INBOX", 5) == 0 && (len == 5 || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return 0;
}

/* ---- special use (RFC 6154) ---- */

static const struct {
	unsigned bit;
	const char *name;
} store_mailbox_specials[] = {
    {STORE_SPECIAL_ALL, "\\All"},       {STORE_SPECIAL_ARCHIVE, "\\Archive"},
    {STORE_SPECIAL_DRAFTS, "\\Drafts"}, {STORE_SPECIAL_FLAGGED, "\\Flagged"},
    {STORE_SPECIAL_JUNK, "\\Junk"},     {STORE_SPECIAL_SENT, "\\Sent"},
    {STORE_SPECIAL_TRASH, "\\Trash"},
};
#define STORE_MAILBOX_SPECIAL_COUNT                                                                \
	(sizeof(store_mailbox_specials) / sizeof(store_mailbox_specials[0]))

char *store_mailbox_special_dup(unsigned bits)
{
	struct buf b;
	if (bits == 0)
		return NULL;
	buf_init(&b, 256);
	for (size_t i = 0; i < STORE_MAILBOX_SPECIAL_COUNT; i++) {
		if ((bits & store_mailbox_specials[i].bit) == 0)
			continue;
		if ((b.len > 0 && buf_puts(&b, " ") < 0) ||
		    buf_puts(&b, store_mailbox_specials[i].name) < 0)
			log_panic("store: special-use text too long");
	}
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

unsigned store_mailbox_special_bits(const char *text)
{
	unsigned bits = 0;
	const char *p = text == NULL ? "" : text;
	while (*p != '\0') {
		size_t len = strcspn(p, " ");
		for (size_t i = 0; i < STORE_MAILBOX_SPECIAL_COUNT; i++) {
			const char *name = store_mailbox_specials[i].name;
			if (strlen(name) == len && strncasecmp(p, name, len) == 0)
				bits |= store_mailbox_specials[i].bit;
		}
		p += len;
		p += strspn(p, " ");
	}
	return bits;
}

/* ---- keywords ---- */

int store_mailbox_keyword_valid(const char *keyword)
{
	size_t len = keyword == NULL ? 0 : strlen(keyword);
	if (len == 0 || len > STORE_KEYWORD_LEN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)keyword[i];
		/* RFC 9051 §9: atom-char is any CHAR except atom-specials; that also rules out
		 * '\' (system flags) anywhere. */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return 1;
}

const char *store_mailbox_keywords_join(const char *const *keywords, size_t count, char **joined_r)
{
	struct buf b;
	*joined_r = NULL;
	if (count > STORE_KEYWORDS_MAX)
		return STORE_ERROR_LIMIT;
	buf_init(&b, STORE_KEYWORDS_TEXT_MAX);
	for (size_t i = 0; i < count; i++) {
		if (!store_mailbox_keyword_valid(keywords[i])) {
			buf_free(&b);
			return STORE_ERROR_BAD_KEYWORD;
		}
		if ((b.len > 0 && buf_puts(&b, " ") < 0) || buf_puts(&b, keywords[i]) < 0)
			log_panic("store: keyword list too long");
	}
	*joined_r = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return NULL;
}

/* The next word of a keyword list at *p: its start and *len_r, *p moved past it; NULL at
 * the end. */
static const char *store_mailbox_kw_next(const char **p, size_t *len_r)
{
	const char *s = *p + strspn(*p, " ");
	if (*s == '\0')
		return NULL;
	*len_r = strcspn(s, " ");
	*p = s + *len_r;
	return s;
}

/* The word of list equal to w (case-insensitively), or NULL. */
static const char *store_mailbox_kw_find(const char *list, const char *w, size_t len)
{
	const char *p = list, *word;
	size_t wlen;
	while ((word = store_mailbox_kw_next(&p, &wlen)) != NULL) {
		if (wlen == len && strncasecmp(word, w, len) == 0)
			return word;
	}
	return NULL;
}

static int store_mailbox_kw_append(struct buf *b, const char *w, size_t len)
{
	if (b->len > 0 && buf_puts(b, " ") < 0)
		return -1;
	return buf_append(b, w, len);
}

int store_mailbox_kw_canon(const char *dict, const char *words, bool add, struct buf *dict_out,
                           struct buf *canon_out)
{
	const char *p = words, *w;
	size_t len, count = 0;
	buf_reset(dict_out);
	buf_reset(canon_out);
	if (buf_puts(dict_out, dict) < 0)
		return -1;
	while ((w = store_mailbox_kw_next(&p, &len)) != NULL) {
		if (store_mailbox_kw_find(buf_cstr(canon_out), w, len) != NULL)
			continue;
		const char *known = store_mailbox_kw_find(buf_cstr(dict_out), w, len);
		if (known == NULL && add && store_mailbox_kw_append(dict_out, w, len) < 0)
			return -1;
		/* dict_out may have moved: copy the spelling from it afresh. */
		known = store_mailbox_kw_find(buf_cstr(dict_out), w, len);
		if (store_mailbox_kw_append(canon_out, known != NULL ? known : w, len) < 0)
			return -1;
	}
	p = buf_cstr(dict_out);
	while (store_mailbox_kw_next(&p, &len) != NULL)
		count++;
	return count > (size_t)INT32_MAX ? -1 : (int)count;
}

int store_mailbox_kw_apply(const char *current, enum store_flags_mode mode, const char *canon,
                           struct buf *out)
{
	const char *p, *w;
	size_t len;
	buf_reset(out);
	if (mode != STORE_FLAGS_REPLACE) {
		/* Keep what the entry has, less what REMOVE names. */
		p = current;
		while ((w = store_mailbox_kw_next(&p, &len)) != NULL) {
			bool drop = mode == STORE_FLAGS_REMOVE &&
			            store_mailbox_kw_find(canon, w, len) != NULL;
			if (!drop && store_mailbox_kw_append(out, w, len) < 0)
				return -1;
		}
	}
	if (mode == STORE_FLAGS_REMOVE)
		return 0;
	p = canon;
	while ((w = store_mailbox_kw_next(&p, &len)) != NULL) {
		if (store_mailbox_kw_find(buf_cstr(out), w, len) == NULL &&
		    store_mailbox_kw_append(out, w, len) < 0)
			return -1;
	}
	return 0;
}

/* ---- LIST ---- */

struct store_mailbox_name {
	char *name;
	unsigned special;
	bool exists, subscribed, has_children;
};

struct store_mailbox_names {
	struct store_mailbox_name *v;
	size_t count, cap;
};

static void store_mailbox_names_add(struct store_mailbox_names *n, const char *name, size_t len,
                                    unsigned special, bool exists, bool subscribed)
{
	if (n->count == n->cap) {
		n->cap = n->cap == 0 ? 32 : n->cap * 2;
		n->v = xrealloc(n->v, n->cap * sizeof(*n->v));
	}
	n->v[n->count++] = (struct store_mailbox_name){
	    .name = xstrndup(name, len),
	    .special = special,
	    .exists = exists,
	    .subscribed = subscribed,
	};
}

static void store_mailbox_list_mailbox(void *ctx, const char *name, const char *special_use)
{
	struct store_mailbox_names *n = ctx;
	store_mailbox_names_add(n, name, strlen(name), store_mailbox_special_bits(special_use),
	                        true, false);
	/* Every parent, as a placeholder; merged with the real one below if it exists. */
	for (const char *slash = strchr(name, '/'); slash != NULL; slash = strchr(slash + 1, '/'))
		store_mailbox_names_add(n, name, (size_t)(slash - name), 0, false, false);
}

static void store_mailbox_list_subscription(void *ctx, const char *name)
{
	store_mailbox_names_add(ctx, name, strlen(name), 0, false, true);
}

static int store_mailbox_name_cmp(const void *a, const void *b)
{
	const struct store_mailbox_name *x = a, *y = b;
	return strcmp(x->name, y->name);
}

/* Sort and merge the records of one name. */
static void store_mailbox_names_merge(struct store_mailbox_names *n)
{
	size_t out = 0;
	qsort(n->v, n->count, sizeof(*n->v), store_mailbox_name_cmp);
	for (size_t i = 0; i < n->count; i++) {
		struct store_mailbox_name *cur = &n->v[i];
		if (out > 0 && strcmp(n->v[out - 1].name, cur->name) == 0) {
			struct store_mailbox_name *prev = &n->v[out - 1];
			prev->exists = prev->exists || cur->exists;
			prev->subscribed = prev->subscribed || cur->subscribed;
			prev->special |= cur->special;
			free(cur->name);
			continue;
		}
		n->v[out++] = *cur;
	}
	n->count = out;
}

static struct store_mailbox_name *store_mailbox_names_find(struct store_mailbox_names *n,
                                                           const char *name)
{
	struct store_mailbox_name key = {.name = (char *)name};
	return bsearch(&key, n->v, n->count, sizeof(*n->v), store_mailbox_name_cmp);
}

/* Mark the parents of every existing mailbox (all present after the merge). */
static void store_mailbox_names_children(struct store_mailbox_names *n)
{
	for (size_t i = 0; i < n->count; i++) {
		if (!n->v[i].exists)
			continue;
		char *name = xstrdup(n->v[i].name);
		for (char *slash = strrchr(name, '/'); slash != NULL; slash = strrchr(name, '/')) {
			*slash = '\0';
			struct store_mailbox_name *parent = store_mailbox_names_find(n, name);
			ASSERT(parent != NULL);
			if (parent->has_children)
				break; /* its own parents are marked already */
			parent->has_children = true;
		}
		free(name);
	}
}

int store_mailbox_list(struct store *store, uint64_t account_id,
                       void (*cb)(void *ctx, const struct store_mailbox_info *info), void *ctx)
{
	struct store_mailbox_names n = {0};
	int ret = store->v->mailbox_list(store, account_id, store_mailbox_list_mailbox,
	                                 store_mailbox_list_subscription, &n);
	if (ret == 1) {
		store_mailbox_names_merge(&n);
		store_mailbox_names_children(&n);
		for (size_t i = 0; i < n.count; i++) {
			struct store_mailbox_info info = {
			    .name = n.v[i].name,
			    .special_use = n.v[i].special,
			    .exists = n.v[i].exists,
			    .has_children = n.v[i].has_children,
			    .subscribed = n.v[i].subscribed,
			};
			cb(ctx, &info);
		}
	}
	for (size_t i = 0; i < n.count; i++)
		free(n.v[i].name);
	free(n.v);
	return ret;
}

/* ---- reads by name ---- */

int store_mailbox_exists(struct store *store, uint64_t account_id, const char *mailbox)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	return store->v->mailbox_exists(store, account_id, name);
}

int store_mailbox_stats(struct store *store, uint64_t account_id, const char *mailbox,
                        struct store_mailbox_stats *stats_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	int r = store->v->mailbox_stats(store, account_id, name, stats_r);
	if (r != 1)
		return r;
	uint32_t first;
	stats_r->recent = 0;
	if (store_recent_claim(store, account_id, name, stats_r->uidvalidity, stats_r->uidnext,
	                       false, &first) == 1 &&
	    first < stats_r->uidnext &&
	    store->v->mailbox_count_from(store, account_id, name, first, &stats_r->recent) != 1)
		stats_r->recent = 0;
	return 1;
}

int store_mailbox_keywords(struct store *store, uint64_t account_id, const char *mailbox,
                           char **keywords_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	return store->v->mailbox_keywords(store, account_id, name, keywords_r);
}

int store_mailbox_changes(struct store *store, uint64_t account_id, const char *mailbox,
                          uint64_t since_modseq,
                          void (*entry_cb)(void *ctx, const struct store_entry *entry),
                          void (*expunged_cb)(void *ctx, uint32_t uid, uint64_t modseq), void *ctx,
                          struct store_mailbox_status *status_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store_mailbox_status status;
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	return store->v->mailbox_changes(store, account_id, name, since_modseq, entry_cb,
	                                 expunged_cb, ctx, status_r == NULL ? &status : status_r);
}

/* ---- mailbox operations ---- */

bool store_metadata_name_valid(const char *name, bool root_ok)
{
	size_t len = strlen(name);
	if (root_ok && (strcasecmp(name, "/private") == 0 || strcasecmp(name, "/shared") == 0))
		return true;
	if (len > STORE_METADATA_NAME_MAX ||
	    (strncasecmp(name, "/private/", 9) != 0 && strncasecmp(name, "/shared/", 8) != 0) ||
	    name[len - 1] == '/')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '*' || ch == '%' ||
		    (ch == '/' && name[i + 1] == '/'))
			return false;
	}
	return true;
}

/* Every entry of a METADATA operation valid and lower-case, and none named twice. */
static bool store_mailbox_metadata_ok(const struct store_mailbox_op *op)
{
	for (size_t i = 0; i < op->metadata_count; i++) {
		const char *n = op->metadata[i].name;
		if (!store_metadata_name_valid(n, false))
			return false;
		for (const char *c = n; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				return false;
		for (size_t j = 0; j < i; j++)
			if (strcmp(op->metadata[j].name, n) == 0)
				return false;
	}
	return op->metadata_count > 0;
}

int store_metadata_get(struct store *store, uint64_t account_id, const char *mailbox,
                       const char *name, int depth,
                       void (*cb)(void *ctx, const char *name, const void *value, size_t size),
                       void *ctx)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1] = "";
	if (mailbox[0] != '\0' && store_mailbox_norm(mailbox, norm) < 0)
		return 0;
	if (!store_metadata_name_valid(name, true))
		return -1;
	return store->v->metadata_get(store, account_id, norm, name, depth, cb, ctx);
}

void store_mailbox_change(struct store *store, struct store_mailbox_op *op, store_mailbox_cb *cb,
                          void *ctx)
{
	char name[STORE_MAILBOX_NAME_MAX + 1], new_name[STORE_MAILBOX_NAME_MAX + 1];
	const char *refuse = NULL;
	name[0] = new_name[0] = '\0';
	if (op->action > STORE_MAILBOX_ACL)
		refuse = STORE_ERROR_INVALID;
	else if (op->action == STORE_MAILBOX_ACL &&
	         (op->acl_identifier == NULL || !store_acl_identifier_valid(op->acl_identifier) ||
	          (op->acl_rights & ~STORE_ACL_ALL) != 0))
		refuse = STORE_ERROR_INVALID;
	else if (op->action == STORE_MAILBOX_METADATA && !store_mailbox_metadata_ok(op))
		refuse = STORE_ERROR_INVALID;
	else if (op->action == STORE_MAILBOX_METADATA && op->name[0] == '\0')
		; /* the account's server entries */
	else if (store_mailbox_norm(op->name, name) < 0)
		refuse = STORE_ERROR_BAD_NAME;
	else if (op->action == STORE_MAILBOX_RENAME &&
	         store_mailbox_norm(op->new_name, new_name) < 0)
		refuse = STORE_ERROR_BAD_NAME;
	store_writer_mailbox(store, op, name, new_name, refuse, cb, ctx);
}
