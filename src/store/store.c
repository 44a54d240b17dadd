/* The public store API (store.h): argument validation and lower-casing, recipient
 * resolution over the backend's primitives, queueing of deliveries, expunges, appends,
 * flags and copies to the writer thread (store_writer.c: group commit) and waiting for
 * them, message files (blob.c), orphan cleanup at open, and dispatch of everything else to
 * the backend vtable. Mailbox names and listings are in store_mailbox.c, watches in
 * store_watch.c. */
#include "store/store.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/blob.h"
#include "store/store_db.h"
#include "store/store_private.h"
#include "core/banned.h"

/* Room left in PATH_MAX for "/messages/ab/<64 hex>" and spool names. */
#define STORE_DATA_DIR_MAX (PATH_MAX - 256)
#define STORE_FLAGS_TEXT_MAX 65536

static _Thread_local char store_error_buf[STORE_ERROR_MAX];
/* store_account_lookup()'s info_r->address points here. */
static _Thread_local char store_lookup_address[STORE_ADDRESS_MAX + 1];

static const struct store_mailbox_template store_default_mailboxes[] = {
    {"INBOX", NULL, true},      {"Drafts", "\\Drafts", true}, {"Sent", "\\Sent", true},
    {"Trash", "\\Trash", true}, {"Junk", "\\Junk", true},     {"Archive", "\\Archive", true},
};

const char *store_error_fmt(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(store_error_buf, sizeof(store_error_buf), fmt, ap);
	va_end(ap);
	return store_error_buf;
}

/* ---- validation ---- */

static bool store_domain_valid(const char *d)
{
	size_t len = strlen(d), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = d[i];
		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (c != '-' || label == 0))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && d[len - 1] != '-';
}

/* RFC 5321 §4.1.2 Dot-string (unquoted), plus UTF-8 bytes for RFC 6531. */
static bool store_local_valid(const char *local, size_t len)
{
	if (len == 0 || len > 64 || local[0] == '.' || local[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];
		if (c <= 0x20 || c == 0x7f || strchr("()<>[]\\,;:\"@", c) != NULL)
			return false;
		if (c == '.' && local[i + 1] == '.')
			return false;
	}
	return true;
}

static void store_lower(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	}
}

/* Copy in lower-cased to out (STORE_ADDRESS_MAX + 1 bytes) and check it is an address
 * (or "@domain" when allow_catchall). 0, or -1 with *error_r. */
static int store_address_norm(const char *in, char *out, bool allow_catchall, const char **error_r)
{
	size_t len = in == NULL ? 0 : strlen(in);
	if (len == 0 || len > STORE_ADDRESS_MAX) {
		*error_r = store_error_fmt("invalid address: %s",
		                           in == NULL ? "(null)" : "too long or empty");
		return -1;
	}
	memcpy(out, in, len + 1);
	store_lower(out);
	const char *at = strchr(out, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL) {
		*error_r = store_error_fmt("invalid address %s: needs exactly one '@'", in);
		return -1;
	}
	size_t local_len = (size_t)(at - out);
	bool local_ok = local_len == 0 ? allow_catchall : store_local_valid(out, local_len);
	if (!local_ok || !store_domain_valid(at + 1)) {
		*error_r = store_error_fmt("invalid address %s", in);
		return -1;
	}
	return 0;
}

static int store_domain_norm(const char *in, char *out, const char **error_r)
{
	size_t len = in == NULL ? 0 : strlen(in);
	if (len == 0 || len > STORE_ADDRESS_MAX) {
		*error_r = store_error_fmt("invalid domain name");
		return -1;
	}
	memcpy(out, in, len + 1);
	store_lower(out);
	if (!store_domain_valid(out)) {
		*error_r = store_error_fmt("invalid domain name %s", in);
		return -1;
	}
	return 0;
}

/* Domain part of a normalised address. */
static const char *store_address_domain(const char *address)
{
	return strchr(address, '@') + 1;
}

/* Check that the domain of a normalised address is ours. */
static int store_require_local(struct store *store, const char *address, const char **error_r)
{
	int ret = store->v->domain_is_local(store, store_address_domain(address));
	if (ret < 0)
		*error_r = store_error_fmt("cannot look up domain of %s", address);
	else if (ret == 0)
		*error_r = store_error_fmt("domain of %s is not local", address);
	return ret == 1 ? 0 : -1;
}

/* ---- domains ---- */

int store_domain_add(struct store *store, const char *domain, const char **error_r)
{
	char name[STORE_ADDRESS_MAX + 1];
	if (store_domain_norm(domain, name, error_r) < 0)
		return -1;
	return store->v->domain_add(store, name, error_r);
}

int store_domain_del(struct store *store, const char *domain, const char **error_r)
{
	char name[STORE_ADDRESS_MAX + 1];
	if (store_domain_norm(domain, name, error_r) < 0)
		return -1;
	return store->v->domain_del(store, name, error_r);
}

int store_domain_list(struct store *store, void (*cb)(void *ctx, const char *domain), void *ctx)
{
	return store->v->domain_list(store, cb, ctx);
}

int store_domain_is_local(struct store *store, const char *domain)
{
	char name[STORE_ADDRESS_MAX + 1];
	const char *error;
	if (store_domain_norm(domain, name, &error) < 0)
		return 0;
	return store->v->domain_is_local(store, name);
}

/* ---- accounts ---- */

int store_account_add(struct store *store, const char *address, const char *password_hash,
                      uint64_t quota, const char **error_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	if (store_address_norm(address, addr, false, error_r) < 0)
		return -1;
	if (password_hash == NULL) {
		*error_r = store_error_fmt("missing password hash");
		return -1;
	}
	if (store_require_local(store, addr, error_r) < 0)
		return -1;
	return store->v->account_add(
	    store, addr, password_hash, quota, store_default_mailboxes,
	    sizeof(store_default_mailboxes) / sizeof(store_default_mailboxes[0]), error_r);
}

static void store_blob_removed(void *ctx, const char *sha256)
{
	struct store *store = ctx;
	(void)blob_unlink(store->messages_dir, sha256);
}

int store_account_del(struct store *store, const char *address, const char **error_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	if (store_address_norm(address, addr, false, error_r) < 0)
		return -1;
	/* Message files go at once, under blob_lock: see struct store. */
	pthread_mutex_lock(&store->blob_lock);
	int ret = store->v->account_del(store, addr, store_blob_removed, store, error_r);
	pthread_mutex_unlock(&store->blob_lock);
	return ret;
}

int store_account_set_password(struct store *store, const char *address, const char *password_hash,
                               const char **error_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	if (store_address_norm(address, addr, false, error_r) < 0)
		return -1;
	if (password_hash == NULL) {
		*error_r = store_error_fmt("missing password hash");
		return -1;
	}
	return store->v->account_set_password(store, addr, password_hash, error_r);
}

int store_account_set_quota(struct store *store, const char *address, uint64_t quota,
                            const char **error_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	if (store_address_norm(address, addr, false, error_r) < 0)
		return -1;
	return store->v->account_set_quota(store, addr, quota, error_r);
}

int store_account_set_apop(struct store *store, const char *address, const char *secret,
                           const char **error_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	if (store_address_norm(address, addr, false, error_r) < 0)
		return -1;
	if (secret != NULL && (secret[0] == '\0' || strlen(secret) > STORE_APOP_SECRET_MAX)) {
		*error_r =
		    store_error_fmt("APOP secret must be 1 to %d octets", STORE_APOP_SECRET_MAX);
		return -1;
	}
	return store->v->account_set_apop(store, addr, secret, error_r);
}

int store_account_get_apop(struct store *store, const char *address, uint64_t *account_id_r,
                           char **secret_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	const char *error;
	uint64_t id;
	if (store_address_norm(address, addr, false, &error) < 0)
		return 0;
	int ret = store->v->account_get_apop(store, addr, &id, secret_r);
	if (ret == 1 && account_id_r != NULL)
		*account_id_r = id;
	return ret;
}

int store_account_list(struct store *store, const char *domain,
                       void (*cb)(void *ctx, const struct store_account_info *info), void *ctx)
{
	char name[STORE_ADDRESS_MAX + 1];
	const char *error;
	if (domain != NULL && store_domain_norm(domain, name, &error) < 0)
		return -1;
	return store->v->account_list(store, domain == NULL ? NULL : name, cb, ctx);
}

int store_account_lookup(struct store *store, const char *address, uint64_t *id_r,
                         char **password_hash_r, struct store_account_info *info_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	const char *error;
	if (store_address_norm(address, addr, false, &error) < 0)
		return 0;
	int ret = store->v->account_lookup(store, addr, id_r, password_hash_r, info_r);
	if (ret == 1 && info_r != NULL) {
		memcpy(store_lookup_address, addr, sizeof(addr));
		info_r->address = store_lookup_address;
	}
	return ret;
}

int store_account_usage(struct store *store, uint64_t account_id, uint64_t *quota_r,
                        uint64_t *used_r)
{
	return store->v->account_usage(store, account_id, quota_r, used_r);
}

int store_account_set_message_limit(struct store *store, const char *address, uint64_t limit,
                                    const char **error_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	if (store_address_norm(address, addr, false, error_r) < 0)
		return -1;
	return store->v->account_set_message_limit(store, addr, limit, error_r);
}

int store_account_address(struct store *store, uint64_t account_id, char **address_r)
{
	return store->v->account_address(store, account_id, address_r);
}

int store_account_limits(struct store *store, uint64_t account_id,
                         struct store_account_limits *limits_r)
{
	return store->v->account_limits(store, account_id, limits_r);
}

bool store_account_limits_exceeded(const struct store_account_limits *l, uint64_t size,
                                   uint64_t count)
{
	if (l->quota > 0 && (size > l->quota || l->used > l->quota - size))
		return true;
	return l->message_limit > 0 &&
	       (count > l->message_limit || l->messages > l->message_limit - count);
}

/* ---- aliases ---- */

int store_alias_add(struct store *store, const char *alias, const char *target,
                    const char **error_r)
{
	char name[STORE_ADDRESS_MAX + 1], dest[STORE_ADDRESS_MAX + 1];
	if (store_address_norm(alias, name, true, error_r) < 0 ||
	    store_address_norm(target, dest, false, error_r) < 0)
		return -1;
	if (strcmp(name, dest) == 0) {
		*error_r = store_error_fmt("alias %s cannot point to itself", name);
		return -1;
	}
	if (store_require_local(store, name, error_r) < 0 ||
	    store_require_local(store, dest, error_r) < 0)
		return -1;
	/* Like Postfix's virtual_alias_maps + a recipient check: an alias to nobody would
	 * only turn accepted mail into bounces, so the target must exist now. */
	struct store_rcpt r;
	int found = store_resolve(store, dest, &r);
	if (found <= 0) {
		*error_r = found < 0 ? "lookup failed"
		                     : store_error_fmt("%s is not an account or alias", dest);
		return -1;
	}
	return store->v->alias_add(store, name, dest, error_r);
}

int store_alias_del(struct store *store, const char *alias, const char *target,
                    const char **error_r)
{
	char name[STORE_ADDRESS_MAX + 1], dest[STORE_ADDRESS_MAX + 1];
	if (store_address_norm(alias, name, true, error_r) < 0)
		return -1;
	if (target != NULL && store_address_norm(target, dest, false, error_r) < 0)
		return -1;
	return store->v->alias_del(store, name, target == NULL ? NULL : dest, error_r);
}

int store_alias_list(struct store *store,
                     void (*cb)(void *ctx, const char *alias, const char *target), void *ctx)
{
	return store->v->alias_list(store, cb, ctx);
}

/* ---- recipient resolution ---- */

struct store_resolve {
	struct store *store;
	struct store_rcpt *rcpt;
	char *visited[STORE_ALIAS_VISIT_MAX];
	size_t visited_count;
};

struct store_targets {
	char **v;
	size_t count, cap;
};

static void store_targets_add(void *ctx, const char *target)
{
	struct store_targets *t = ctx;
	if (t->count == t->cap) {
		t->cap = t->cap == 0 ? 8 : t->cap * 2;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->count++] = xstrdup(target);
}

static void store_targets_free(struct store_targets *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->v[i]);
	free(t->v);
}

static void store_rcpt_add(struct store_rcpt *rcpt, uint64_t id)
{
	for (size_t i = 0; i < rcpt->count; i++) {
		if (rcpt->account_ids[i] == id)
			return;
	}
	if (rcpt->count < STORE_RCPT_MAX)
		rcpt->account_ids[rcpt->count++] = id;
}

/* Mark name visited; false when it already was (a loop) or too many names were seen. */
static bool store_resolve_visit(struct store_resolve *rs, const char *name)
{
	for (size_t i = 0; i < rs->visited_count; i++) {
		if (strcmp(rs->visited[i], name) == 0)
			return false;
	}
	if (rs->visited_count == STORE_ALIAS_VISIT_MAX)
		return false;
	rs->visited[rs->visited_count++] = xstrdup(name);
	return true;
}

static int store_expand_address(struct store_resolve *rs, const char *address, unsigned depth);

/* name as an account, else as an alias expanded recursively. 1 when name is an account or
 * an alias, 0 neither (or a loop, or too deep), -1 error. */
static int store_expand(struct store_resolve *rs, const char *name, unsigned depth)
{
	uint64_t id;
	int ret = rs->store->v->account_find(rs->store, name, &id);
	if (ret != 0) {
		if (ret == 1)
			store_rcpt_add(rs->rcpt, id);
		return ret;
	}
	if (depth >= STORE_ALIAS_DEPTH_MAX) {
		log_warn("store: alias expansion of %s deeper than %d", name,
		         STORE_ALIAS_DEPTH_MAX);
		return 0;
	}
	if (!store_resolve_visit(rs, name))
		return 0;
	struct store_targets targets = {0};
	ret = rs->store->v->alias_targets(rs->store, name, store_targets_add, &targets);
	for (size_t i = 0; ret > 0 && i < targets.count; i++) {
		if (store_expand_address(rs, targets.v[i], depth + 1) < 0)
			ret = -1;
	}
	store_targets_free(&targets);
	return ret < 0 ? -1 : ret > 0 ? 1 : 0;
}

/* The address itself, then without its "+tag". */
static int store_expand_address(struct store_resolve *rs, const char *address, unsigned depth)
{
	int ret = store_expand(rs, address, depth);
	if (ret != 0)
		return ret;
	const char *at = strchr(address, '@');
	const char *plus = strchr(address, '+');
	if (at == NULL || plus == NULL || plus > at || plus == address)
		return 0;
	char base[STORE_ADDRESS_MAX + 1];
	size_t local_len = (size_t)(plus - address);
	memcpy(base, address, local_len);
	memcpy(base + local_len, at, strlen(at) + 1);
	return store_expand(rs, base, depth);
}

static int store_resolve_full(struct store *store, const char *address, bool catchall,
                              struct store_rcpt *rcpt_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	const char *error;
	rcpt_r->count = 0;
	if (store_address_norm(address, addr, false, &error) < 0)
		return 0;
	const char *domain = store_address_domain(addr);
	int ret = store->v->domain_is_local(store, domain);
	if (ret <= 0)
		return ret;

	struct store_resolve rs = {.store = store, .rcpt = rcpt_r};
	ret = store_expand_address(&rs, addr, 0);
	if (ret >= 0 && rcpt_r->count == 0 && catchall) {
		/* The catch-all "@domain" sits just before the domain in addr. */
		ret = store_expand(&rs, domain - 1, 0);
	}
	for (size_t i = 0; i < rs.visited_count; i++)
		free(rs.visited[i]);
	if (ret < 0)
		return -1;
	return rcpt_r->count > 0 ? 1 : 0;
}

int store_resolve(struct store *store, const char *address, struct store_rcpt *rcpt_r)
{
	return store_resolve_full(store, address, true, rcpt_r);
}

int store_address_owned(struct store *store, uint64_t account_id, const char *address)
{
	struct store_rcpt rcpt;
	int ret = store_resolve_full(store, address, false, &rcpt);
	if (ret <= 0)
		return ret;
	for (size_t i = 0; i < rcpt.count; i++) {
		if (rcpt.account_ids[i] == account_id)
			return 1;
	}
	return 0;
}

/* ---- delivery and expunge: queued to the writer thread (store_writer.c) ---- */

void store_deliver(struct store *store, struct store_delivery *delivery, store_delivery_cb *cb,
                   void *ctx)
{
	store_writer_deliver(store, delivery, cb, ctx);
}

/* Normalise a mailbox name into out (RFC 9051 §5.1: INBOX is case-insensitive); an
 * invalid name becomes "", which matches no mailbox. Returns out. */
static const char *store_mailbox_name(const char *mailbox, char out[STORE_MAILBOX_NAME_MAX + 1])
{
	if (store_mailbox_norm(mailbox, out) < 0)
		out[0] = '\0';
	return out;
}

void store_expunge(struct store *store, struct store_expunge *op, store_expunge_cb *cb, void *ctx)
{
	/* An empty name matches no mailbox: the writer reports it in queue order. */
	char name[STORE_MAILBOX_NAME_MAX + 1];
	store_writer_expunge(store, op, store_mailbox_name(op->mailbox, name), cb, ctx);
}

/* A name that is not valid is refused with NO_MAILBOX: no such mailbox can exist. */
void store_append(struct store *store, struct store_append *op, store_append_cb *cb, void *ctx)
{
	char name[STORE_MAILBOX_NAME_MAX + 1], replace[STORE_MAILBOX_NAME_MAX + 1];
	const char *refuse = NULL;
	store_mailbox_name(op->mailbox, name);
	replace[0] = '\0';
	if (op->replace_mailbox != NULL)
		store_mailbox_name(op->replace_mailbox, replace);
	if (name[0] == '\0')
		refuse = STORE_ERROR_NO_MAILBOX;
	else if (op->replace_mailbox != NULL && (replace[0] == '\0' || op->count != 1))
		refuse = replace[0] == '\0' ? STORE_ERROR_EXPUNGED : STORE_ERROR_INVALID;
	store_writer_append(store, op, name, op->replace_mailbox != NULL ? replace : NULL, refuse,
	                    cb, ctx);
}

void store_flags(struct store *store, struct store_flags *op, store_flags_cb *cb, void *ctx)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	store_mailbox_name(op->mailbox, name);
	store_writer_flags(store, op, name, name[0] == '\0' ? STORE_ERROR_NO_MAILBOX : NULL, cb,
	                   ctx);
}

void store_copy(struct store *store, struct store_copy *op, store_copy_cb *cb, void *ctx)
{
	char name[STORE_MAILBOX_NAME_MAX + 1], target[STORE_MAILBOX_NAME_MAX + 1];
	const char *refuse = NULL;
	store_mailbox_name(op->mailbox, name);
	store_mailbox_name(op->target, target);
	if (name[0] == '\0')
		refuse = STORE_ERROR_NO_MAILBOX;
	else if (target[0] == '\0')
		refuse = STORE_ERROR_NO_TARGET;
	store_writer_copy(store, op, name, target, refuse, cb, ctx);
}

void store_waiter_init(struct store_waiter *w)
{
	w->done = false;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
}

void store_waiter_signal(struct store_waiter *w)
{
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void store_waiter_wait(struct store_waiter *w)
{
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

static void store_waiter_delivered(struct store_delivery *delivery, void *ctx)
{
	(void)delivery;
	store_waiter_signal(ctx);
}

static void store_waiter_expunged(struct store_expunge *op, void *ctx)
{
	(void)op;
	store_waiter_signal(ctx);
}

static void store_waiter_appended(struct store_append *op, void *ctx)
{
	(void)op;
	store_waiter_signal(ctx);
}

static void store_waiter_flagged(struct store_flags *op, void *ctx)
{
	(void)op;
	store_waiter_signal(ctx);
}

static void store_waiter_copied(struct store_copy *op, void *ctx)
{
	(void)op;
	store_waiter_signal(ctx);
}

static void store_waiter_mailbox(struct store_mailbox_op *op, void *ctx)
{
	(void)op;
	store_waiter_signal(ctx);
}

int store_deliver_wait(struct store *store, struct store_delivery *delivery)
{
	struct store_waiter w;
	store_waiter_init(&w);
	store_deliver(store, delivery, store_waiter_delivered, &w);
	store_waiter_wait(&w);
	return delivery->result;
}

int store_expunge_wait(struct store *store, struct store_expunge *op)
{
	struct store_waiter w;
	store_waiter_init(&w);
	store_expunge(store, op, store_waiter_expunged, &w);
	store_waiter_wait(&w);
	return op->result;
}

int store_append_wait(struct store *store, struct store_append *op)
{
	struct store_waiter w;
	store_waiter_init(&w);
	store_append(store, op, store_waiter_appended, &w);
	store_waiter_wait(&w);
	return op->result;
}

int store_flags_wait(struct store *store, struct store_flags *op)
{
	struct store_waiter w;
	store_waiter_init(&w);
	store_flags(store, op, store_waiter_flagged, &w);
	store_waiter_wait(&w);
	return op->result;
}

int store_copy_wait(struct store *store, struct store_copy *op)
{
	struct store_waiter w;
	store_waiter_init(&w);
	store_copy(store, op, store_waiter_copied, &w);
	store_waiter_wait(&w);
	return op->result;
}

int store_mailbox_change_wait(struct store *store, struct store_mailbox_op *op)
{
	struct store_waiter w;
	store_waiter_init(&w);
	store_mailbox_change(store, op, store_waiter_mailbox, &w);
	store_waiter_wait(&w);
	return op->result;
}

void store_unwatch(struct store_watch **watch)
{
	store_watch_remove(watch);
}

void store_set_summarizer(struct store *store, store_summarizer_fn *fn, void *ctx)
{
	pthread_mutex_lock(&store->queue_lock);
	store->summarizer = fn;
	store->summarizer_ctx = fn == NULL ? NULL : ctx;
	pthread_mutex_unlock(&store->queue_lock);
}

void store_set_search_texter(struct store *store, store_search_texter_fn *fn, void *ctx, size_t max)
{
	pthread_mutex_lock(&store->queue_lock);
	store->search_texter = max > 0 ? fn : NULL;
	store->search_texter_ctx = max > 0 ? ctx : NULL;
	store->search_texter_max = max;
	store->search_backfill_cursor = 0;
	store->search_backfill_done = false;
	pthread_cond_signal(&store->queue_cond); /* the writer may backfill */
	pthread_mutex_unlock(&store->queue_lock);
}

/* ---- reading ---- */

struct store_list_ctx {
	void (*cb)(void *ctx, const struct store_message_info *info);
	void *ctx;
	struct buf flags;
};

static const struct {
	uint32_t bit;
	const char *name;
} store_flag_names[] = {
    {STORE_FLAG_SEEN, "\\Seen"},       {STORE_FLAG_ANSWERED, "\\Answered"},
    {STORE_FLAG_FLAGGED, "\\Flagged"}, {STORE_FLAG_DELETED, "\\Deleted"},
    {STORE_FLAG_DRAFT, "\\Draft"},
};

static void store_mail_list_row(void *ctx, const struct store_entry_row *row)
{
	struct store_list_ctx *lc = ctx;
	buf_reset(&lc->flags);
	for (size_t i = 0; i < sizeof(store_flag_names) / sizeof(store_flag_names[0]); i++) {
		if ((row->flags & store_flag_names[i].bit) == 0)
			continue;
		if ((lc->flags.len > 0 && buf_puts(&lc->flags, " ") < 0) ||
		    buf_puts(&lc->flags, store_flag_names[i].name) < 0)
			log_warn("store: flags of uid %u too long", row->uid);
	}
	if (row->keywords[0] != '\0' && ((lc->flags.len > 0 && buf_puts(&lc->flags, " ") < 0) ||
	                                 buf_puts(&lc->flags, row->keywords) < 0))
		log_warn("store: keywords of uid %u too long", row->uid);
	struct store_message_info info = {
	    .uid = row->uid,
	    .flags = buf_cstr(&lc->flags),
	    .size = row->size,
	    .internal_date = row->internal_date,
	    .mail_from = row->mail_from,
	    .hdr_from = row->hdr_from,
	    .subject = row->subject,
	};
	lc->cb(lc->ctx, &info);
}

int store_mail_list(struct store *store, const char *address, const char *mailbox,
                    void (*cb)(void *ctx, const struct store_message_info *info), void *ctx)
{
	char addr[STORE_ADDRESS_MAX + 1];
	const char *error;
	if (store_address_norm(address, addr, false, &error) < 0 || mailbox == NULL)
		return 0;
	struct store_list_ctx lc = {.cb = cb, .ctx = ctx};
	buf_init(&lc.flags, STORE_FLAGS_TEXT_MAX);
	int ret = store->v->mail_list(store, addr, mailbox, store_mail_list_row, &lc);
	buf_free(&lc.flags);
	return ret;
}

/* After a locate: the in-memory copy of a body from the database, or its file. */
static int store_body_open(struct store *store, const char *sha256, uint64_t size, int fd,
                           int *fd_r, uint64_t *size_r)
{
	if (fd >= 0) {
		*fd_r = fd;
		*size_r = size;
		return 1;
	}
	/* A file missing now was expunged (or removed with its account) after our lookup. */
	return blob_open(store->messages_dir, sha256, fd_r, size_r);
}

void store_set_inline_max(struct store *store, uint64_t max)
{
	atomic_store(&store->inline_max, max);
}

int store_mail_open(struct store *store, const char *address, const char *mailbox, uint32_t uid,
                    int *fd_r, uint64_t *size_r)
{
	char addr[STORE_ADDRESS_MAX + 1];
	char sha256[BLOB_HEX_LEN + 1];
	uint64_t size;
	const char *error;
	if (store_address_norm(address, addr, false, &error) < 0 || mailbox == NULL)
		return 0;
	int fd = -1;
	int ret = store->v->mail_locate(store, addr, mailbox, uid, sha256, &size, &fd);
	if (ret <= 0)
		return ret;
	return store_body_open(store, sha256, size, fd, fd_r, size_r);
}

int store_mailbox_snapshot(struct store *store, uint64_t account_id, const char *mailbox,
                           struct store_mailbox_status *status_r,
                           void (*cb)(void *ctx, const struct store_entry *entry), void *ctx)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	if (cb == NULL)
		return store->v->mailbox_snapshot(store, account_id, name, status_r, cb, ctx);
	return store_snapcache_snapshot(store, account_id, name, status_r, cb, ctx);
}

int store_message_open_want(struct store *store, uint64_t account_id, const char *mailbox,
                            uint32_t uid, const struct store_want *want, int *fd_r,
                            uint64_t *size_r)
{
	char sha256[BLOB_HEX_LEN + 1], name[STORE_MAILBOX_NAME_MAX + 1];
	uint64_t size;
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	int fd = -1;
	int ret = store->v->message_locate(store, account_id, name, uid, want, sha256, &size, &fd);
	if (ret <= 0)
		return ret;
	return store_body_open(store, sha256, size, fd, fd_r, size_r);
}

int store_message_open(struct store *store, uint64_t account_id, const char *mailbox, uint32_t uid,
                       int *fd_r, uint64_t *size_r)
{
	return store_message_open_want(store, account_id, mailbox, uid, NULL, fd_r, size_r);
}

int store_message_summary(struct store *store, uint64_t account_id, const char *mailbox,
                          uint32_t uid, char **envelope_r, char **body_r, char **bodystructure_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	char *texts[3] = {NULL, NULL, NULL};
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	int ret = store->v->message_summary(store, account_id, name, uid, &texts[0], &texts[1],
	                                    &texts[2]);
	char **out[3] = {envelope_r, body_r, bodystructure_r};
	for (int i = 0; i < 3; i++) {
		if (ret == 1 && out[i] != NULL)
			*out[i] = texts[i];
		else
			free(texts[i]);
	}
	return ret;
}

int store_message_objects(struct store *store, uint64_t account_id, const char *mailbox,
                          uint32_t uid, struct store_message_objects *objects_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	*objects_r = (struct store_message_objects){.save_date = 0};
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	return store->v->message_objects(store, account_id, name, uid, objects_r);
}

int store_mailbox_emailid_uids(struct store *store, uint64_t account_id, const char *mailbox,
                               const char *emailid, uint32_t **uids_r, size_t *count_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	*uids_r = NULL;
	*count_r = 0;
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	/* An EMAILID is "M" and 64 lower-case hex digits; anything else names no message
	 * (the read still says whether the mailbox exists). */
	bool valid = emailid[0] == 'M' && blob_name_valid(emailid + 1);
	return store->v->emailid_uids(store, account_id, name, valid ? emailid + 1 : "-", uids_r,
	                              count_r);
}

int store_search_text_uids(struct store *store, uint64_t account_id, const char *mailbox,
                           const char *needle, bool body_only, uint32_t **uids_r, size_t *count_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	*uids_r = NULL;
	*count_r = 0;
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	return store->v->search_text_uids(store, account_id, name, needle, body_only, uids_r,
	                                  count_r);
}

int store_search_unindexed_uids(struct store *store, uint64_t account_id, const char *mailbox,
                                uint32_t **uids_r, size_t *count_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	*uids_r = NULL;
	*count_r = 0;
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	return store->v->search_unindexed_uids(store, account_id, name, uids_r, count_r);
}

int store_search_hdr_each(struct store *store, uint64_t account_id, const char *mailbox,
                          const char *prefilter, store_search_hdr_fn *fn, void *ctx)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	return store->v->search_hdr_each(store, account_id, name, prefilter, fn, ctx);
}

int store_search_hdr_unindexed_uids(struct store *store, uint64_t account_id, const char *mailbox,
                                    uint32_t **uids_r, size_t *count_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	*uids_r = NULL;
	*count_r = 0;
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	return store->v->search_hdr_unindexed_uids(store, account_id, name, uids_r, count_r);
}

uint64_t store_acl_version(struct store *store)
{
	return atomic_load(&store->acl_version);
}

int store_schema_version(struct store *store)
{
	return store->v->schema_version(store);
}

/* ---- open and close ---- */

static char *store_join_dup(const char *dir, const char *name)
{
	struct buf b;
	buf_init(&b, PATH_MAX);
	if (buf_printf(&b, "%s/%s", dir, name) < 0)
		log_panic("store: path too long: %s/%s", dir, name);
	return b.data;
}

char *store_spool_path_dup(struct store *store)
{
	struct buf b;
	uint64_t seq = atomic_fetch_add(&store->spool_seq, 1);
	buf_init(&b, PATH_MAX);
	if (buf_printf(&b, "%s/%lld.%ld.%llu", store->tmp_dir, (long long)time(NULL),
	               (long)getpid(), (unsigned long long)seq) < 0)
		log_panic("store: spool path too long");
	return b.data;
}

/* mkdir path unless it exists; *created_r tells whether this call made it. */
static int store_mkdir(const char *path, bool *created_r, const char **error_r)
{
	if (mkdir(path, 0700) == 0) {
		*created_r = true;
		return 0;
	}
	if (errno != EEXIST) {
		*error_r = store_error_fmt("mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* A directory made here has a durable name only once its parent is synced: a power cut
 * may otherwise drop it with everything stored beneath it later (SQLite syncs the data
 * directory when it creates its WAL, but not always after messages/ was made). The data
 * directory itself is synced at every open (one fsync), so that messages/ and tmp/ are
 * durable even when a crash came between their mkdir and an earlier sync. */
static int store_sync_parent(const char *path, const char **error_r)
{
	char *parent = xstrdup(path);
	size_t len = strlen(parent);
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	char *slash = strrchr(parent, '/');
	if (slash == NULL) {
		parent[0] = '.';
		parent[1] = '\0';
	} else {
		slash[slash == parent ? 1 : 0] = '\0';
	}
	int ret = blob_sync_dir(parent, error_r);
	free(parent);
	return ret;
}

static int store_blob_keep(void *ctx, const char *sha256)
{
	struct store *store = ctx;
	return store->v->message_exists(store, sha256);
}

/* Leftover spool files, message rows nothing references and files no row names. */
static int store_cleanup(struct store *store, const char **error_r)
{
	int removed = blob_clear_dir(store->tmp_dir);
	if (removed > 0)
		log_info("store: removed %d leftover spool files", removed);
	if (removed < 0 || store->v->message_gc(store, store_blob_removed, store) < 0 ||
	    blob_sweep(store->messages_dir, store_blob_keep, store) < 0) {
		*error_r = store_error_fmt("cleaning up orphaned files failed (see log)");
		return -1;
	}
	return 0;
}

/* The lock file tells whether anyone else (a running server, another CLI command) has the
 * store open: only a process that gets it exclusively may remove "orphaned" files, which
 * might otherwise be another process's delivery in flight. Everyone then holds it shared
 * until store_close(). */
static int store_lock(struct store *store, const char **error_r)
{
	char *path = store_join_dup(store->data_dir, "posthorn.lock");
	store->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (store->lock_fd < 0) {
		*error_r = store_error_fmt("cannot open the lock file: %s", strerror(errno));
		return -1;
	}
	store->exclusive = flock(store->lock_fd, LOCK_EX | LOCK_NB) == 0;
	return 0;
}

static int store_lock_share(struct store *store, const char **error_r)
{
	while (flock(store->lock_fd, LOCK_SH) < 0) {
		if (errno != EINTR) {
			*error_r = store_error_fmt("cannot lock the store: %s", strerror(errno));
			return -1;
		}
	}
	store->exclusive = false;
	return 0;
}

static void store_leases_free(struct store *store);

int store_open(const char *data_dir, struct store **store_r, const char **error_r)
{
	return store_open_engine(data_dir, NULL, NULL, store_r, error_r);
}

int store_open_engine(const char *data_dir, const char *engine, const char *url,
                      struct store **store_r, const char **error_r)
{
	const struct store_vfuncs *v = &store_db_vfuncs;
	struct store *store;

	if (sodium_init() < 0) {
		*error_r = "libsodium initialisation failed";
		return -1;
	}
	if (data_dir == NULL || data_dir[0] == '\0' || strlen(data_dir) > STORE_DATA_DIR_MAX) {
		*error_r = "invalid data directory";
		return -1;
	}
	bool made_data = false, made_sub = false; /* made_sub: synced below either way */
	if (store_mkdir(data_dir, &made_data, error_r) < 0)
		return -1;
	/* The parent may be one we cannot read (open to sync): then say so and go on. */
	if (made_data && store_sync_parent(data_dir, error_r) < 0)
		log_warn("store: %s", *error_r);
	if (v->init(data_dir, engine, url, &store, error_r) < 0)
		return -1;
	store->data_dir = xstrdup(data_dir);
	store->messages_dir = store_join_dup(data_dir, "messages");
	store->tmp_dir = store_join_dup(data_dir, "tmp");
	atomic_init(&store->spool_seq, 0);
	atomic_init(&store->inline_max, STORE_INLINE_MAX_DEFAULT);
	atomic_init(&store->space_at, 0);
	atomic_init(&store->space_avail, UINT64_MAX);
	atomic_init(&store->space_inodes, UINT64_MAX);
	atomic_init(&store->space_failing, false);
	atomic_init(&store->space_low, false);
	store->lock_fd = -1;
	pthread_mutex_init(&store->blob_lock, NULL);
	pthread_mutex_init(&store->queue_lock, NULL);
	pthread_cond_init(&store->queue_cond, NULL);
	store_watch_init(store);
	store_recent_init(store);
	store_snapcache_init(store);
	store_reader_init(store);
	pthread_mutex_init(&store->lease_lock, NULL);

	if (store_mkdir(store->messages_dir, &made_sub, error_r) < 0 ||
	    store_mkdir(store->tmp_dir, &made_sub, error_r) < 0 ||
	    blob_sync_dir(data_dir, error_r) < 0 || store_lock(store, error_r) < 0 ||
	    (store->exclusive && store_cleanup(store, error_r) < 0) ||
	    store_lock_share(store, error_r) < 0) {
		store_close(&store);
		return -1;
	}
	if (store_writer_start(store, error_r) < 0) {
		store_close(&store);
		return -1;
	}
	*store_r = store;
	return 0;
}

void store_close(struct store **storep)
{
	struct store *store = storep == NULL ? NULL : *storep;
	if (store == NULL)
		return;
	*storep = NULL;
	if (store->v->stop != NULL)
		store->v->stop(store);
	store_reader_stop(store);
	store_writer_stop(store);
	ASSERT(store->queue_head == NULL);
	store_watch_deinit(store);
	store_recent_deinit(store);
	store_snapcache_deinit(store);
	pthread_cond_destroy(&store->queue_cond);
	pthread_mutex_destroy(&store->queue_lock);
	pthread_mutex_destroy(&store->blob_lock);
	free(store->data_dir);
	free(store->messages_dir);
	free(store->tmp_dir);
	store_leases_free(store);
	int lock_fd = store->lock_fd;
	store->v->deinit(store);
	if (lock_fd >= 0)
		close(lock_fd); /* only after the database is closed */
}

int store_export(struct store *store, FILE *out, const char **error_r)
{
	return store->v->export_dump(store, out, error_r);
}

int store_import(struct store *store, FILE *in, const char **error_r)
{
	return store->v->import_dump(store, in, error_r);
}

int store_check(struct store *store, void (*problem)(void *ctx, const char *text), void *ctx,
                const char **error_r)
{
	return store->v->check(store, problem, ctx, error_r);
}

/* A lease this process holds: renewed until released (store_lease_renew_all()). */
struct store_lease {
	struct store_lease *next;
	char *name, *owner;
	unsigned ttl;
};

int store_lease_take(struct store *store, const char *name, const char *owner, unsigned ttl)
{
	int ret = store->v->lease_take(store, name, owner, (int64_t)time(NULL), ttl);
	if (ret != 1)
		return ret;
	pthread_mutex_lock(&store->lease_lock);
	bool held = false;
	for (struct store_lease *l = store->leases; l != NULL && !held; l = l->next)
		held = strcmp(l->name, name) == 0 && strcmp(l->owner, owner) == 0;
	if (!held) {
		struct store_lease *l = xcalloc(1, sizeof(*l));
		l->name = xstrdup(name);
		l->owner = xstrdup(owner);
		l->ttl = ttl;
		l->next = store->leases;
		store->leases = l;
	}
	pthread_mutex_unlock(&store->lease_lock);
	return 1;
}

void store_lease_release(struct store *store, const char *name, const char *owner)
{
	pthread_mutex_lock(&store->lease_lock);
	for (struct store_lease **p = &store->leases; *p != NULL; p = &(*p)->next) {
		struct store_lease *l = *p;
		if (strcmp(l->name, name) == 0 && strcmp(l->owner, owner) == 0) {
			*p = l->next;
			free(l->name);
			free(l->owner);
			free(l);
			break;
		}
	}
	pthread_mutex_unlock(&store->lease_lock);
	store->v->lease_release(store, name, owner);
}

void store_lease_renew_all(struct store *store)
{
	/* Copy the list: the writes happen without the lock. */
	struct store_lease *copy = NULL;
	pthread_mutex_lock(&store->lease_lock);
	for (struct store_lease *l = store->leases; l != NULL; l = l->next) {
		struct store_lease *c = xcalloc(1, sizeof(*c));
		c->name = xstrdup(l->name);
		c->owner = xstrdup(l->owner);
		c->ttl = l->ttl;
		c->next = copy;
		copy = c;
	}
	pthread_mutex_unlock(&store->lease_lock);
	while (copy != NULL) {
		struct store_lease *c = copy;
		copy = c->next;
		if (store->v->lease_take(store, c->name, c->owner, (int64_t)time(NULL), c->ttl) ==
		    0)
			log_error("store: lease %s of %s was taken over (it ran out)", c->name,
			          c->owner);
		free(c->name);
		free(c->owner);
		free(c);
	}
}

static void store_leases_free(struct store *store)
{
	while (store->leases != NULL) {
		struct store_lease *l = store->leases;
		store->leases = l->next;
		free(l->name);
		free(l->owner);
		free(l);
	}
	pthread_mutex_destroy(&store->lease_lock);
}

bool store_is_shared(struct store *store)
{
	return store->shared;
}
