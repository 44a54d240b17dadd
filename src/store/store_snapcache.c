/* Snapshots of large mailboxes kept between SELECTs (store_mailbox_snapshot()).
 *
 * A SELECT reads every entry of the mailbox; on 100,000 messages that is most of its cost.
 * This cache keeps the last snapshot of each mailbox of at least STORE_SNAPCACHE_MIN
 * entries, with the HIGHESTMODSEQ it was read at. The next snapshot of that mailbox reads
 * only what changed since (store_mailbox_changes(): the entries with a higher MODSEQ and
 * the tombstones of those expunged since, in one read transaction with the status) and
 * merges it in: the same answer as a full read, for the cost of the changes. Correct
 * because every change raises the mailbox's HIGHESTMODSEQ and gives what it changed that
 * MODSEQ, and the tombstones above the mailbox's tombstone_floor are all kept (design-notes,
 * QRESYNC); a copy older than the floor, a different UIDVALIDITY or a mailbox gone drops
 * it (so do UIDs out of order or not below UIDNEXT after the merge, which cannot happen)
 * and reads in full.
 *
 * Bounded: at most STORE_SNAPCACHE_ENTRIES entries in all (least recently used dropped
 * first), and a snapshot unused for STORE_SNAPCACHE_IDLE seconds is dropped; its arrays
 * are large enough that malloc gives them back to the system at once. One lock for the
 * map; one per snapshot, held while it is brought up to date and handed to the caller, so
 * that SELECTs of different mailboxes never wait for each other; a full read holds none. */
#include "store/store_private.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xmalloc.h"
#include "core/banned.h"

/* One cached entry (struct store_entry with its keywords owned; NULL when none). */
struct snap_entry {
	uint32_t uid;
	unsigned flags;
	uint64_t size;
	int64_t internal_date;
	int64_t save_date; /* RFC 8514: set once, when the entry was made */
	uint64_t modseq;
	char *keywords;
};

struct snap {
	struct snap *next; /* the map's list */
	uint64_t account_id;
	char *mailbox;
	uint32_t uidvalidity;
	uint64_t modseq; /* HIGHESTMODSEQ the entries are current to */
	struct snap_entry *v;
	size_t n, cap;
	time_t used;
	unsigned refs;        /* callers using it (under the map's lock) */
	pthread_mutex_t lock; /* its contents */
};

struct store_snapcache {
	pthread_mutex_t lock;
	struct snap *list;
	size_t total; /* entries of all snapshots */
};

static void snap_entries_free(struct snap_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].keywords);
	free(v);
}

static void snap_free(struct snap *sn)
{
	snap_entries_free(sn->v, sn->n);
	free(sn->mailbox);
	pthread_mutex_destroy(&sn->lock);
	free(sn);
}

static void snap_push(struct snap_entry **v, size_t *n, size_t *cap, const struct store_entry *e)
{
	if (*n == *cap) {
		*cap = *cap == 0 ? 1024 : *cap * 2;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = (struct snap_entry){
	    .uid = e->uid,
	    .flags = e->flags,
	    .size = e->size,
	    .internal_date = e->internal_date,
	    .save_date = e->save_date,
	    .modseq = e->modseq,
	    .keywords = e->keywords != NULL && e->keywords[0] != '\0' ? xstrdup(e->keywords) : NULL,
	};
}

void store_snapcache_init(struct store *store)
{
	store->snapcache = xcalloc(1, sizeof(*store->snapcache));
	pthread_mutex_init(&store->snapcache->lock, NULL);
}

void store_snapcache_deinit(struct store *store)
{
	struct store_snapcache *c = store->snapcache;
	if (c == NULL)
		return;
	while (c->list != NULL) {
		struct snap *sn = c->list;
		c->list = sn->next;
		snap_free(sn);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
	store->snapcache = NULL;
}

/* Under the map's lock: unlink and free sn (nobody uses it). */
static void snap_drop_locked(struct store_snapcache *c, struct snap *sn)
{
	for (struct snap **p = &c->list; *p != NULL; p = &(*p)->next) {
		if (*p == sn) {
			*p = sn->next;
			break;
		}
	}
	c->total -= sn->n;
	snap_free(sn);
}

/* Under the map's lock: drop idle snapshots, then the least recently used unused ones
 * until `more` entries fit. */
static void snap_trim_locked(struct store_snapcache *c, size_t more, time_t now)
{
	for (struct snap *sn = c->list, *next; sn != NULL; sn = next) {
		next = sn->next;
		if (sn->refs == 0 && now - sn->used > STORE_SNAPCACHE_IDLE)
			snap_drop_locked(c, sn);
	}
	while (c->total + more > STORE_SNAPCACHE_ENTRIES) {
		struct snap *oldest = NULL;
		for (struct snap *sn = c->list; sn != NULL; sn = sn->next)
			if (sn->refs == 0 && (oldest == NULL || sn->used < oldest->used))
				oldest = sn;
		if (oldest == NULL)
			break;
		snap_drop_locked(c, oldest);
	}
}

/* ---- a full read ---- */

struct snap_full {
	void (*cb)(void *ctx, const struct store_entry *entry);
	void *ctx;
	struct snap_entry *v;
	size_t n, cap;
};

static void snap_full_entry(void *ctx, const struct store_entry *e)
{
	struct snap_full *f = ctx;
	snap_push(&f->v, &f->n, &f->cap, e);
	f->cb(f->ctx, e);
}

/* Keep what a full read collected, if large enough (replacing an older copy). */
static void snap_keep(struct store *store, uint64_t account_id, const char *mailbox,
                      const struct store_mailbox_status *st, struct snap_full *f)
{
	struct store_snapcache *c = store->snapcache;
	if (f->n < STORE_SNAPCACHE_MIN || f->n > STORE_SNAPCACHE_ENTRIES) {
		snap_entries_free(f->v, f->n);
		return;
	}
	time_t now = time(NULL);
	pthread_mutex_lock(&c->lock);
	for (struct snap *sn = c->list; sn != NULL; sn = sn->next) {
		if (sn->account_id == account_id && strcmp(sn->mailbox, mailbox) == 0) {
			if (sn->refs > 0) { /* in use: keep it, drop ours */
				pthread_mutex_unlock(&c->lock);
				snap_entries_free(f->v, f->n);
				return;
			}
			snap_drop_locked(c, sn);
			break;
		}
	}
	snap_trim_locked(c, f->n, now);
	struct snap *sn = xcalloc(1, sizeof(*sn));
	sn->account_id = account_id;
	sn->mailbox = xstrdup(mailbox);
	sn->uidvalidity = st->uidvalidity;
	sn->modseq = st->highestmodseq;
	sn->v = f->v;
	sn->n = f->n;
	sn->cap = f->cap;
	sn->used = now;
	pthread_mutex_init(&sn->lock, NULL);
	sn->next = c->list;
	c->list = sn;
	c->total += sn->n;
	pthread_mutex_unlock(&c->lock);
}

/* ---- bringing a copy up to date ---- */

struct snap_changes {
	struct snap_entry *changed; /* UID order */
	size_t n_changed, cap_changed;
	uint32_t *expunged; /* UID order */
	size_t n_expunged, cap_expunged;
};

static void snap_changed_entry(void *ctx, const struct store_entry *e)
{
	struct snap_changes *ch = ctx;
	snap_push(&ch->changed, &ch->n_changed, &ch->cap_changed, e);
}

static void snap_expunged_uid(void *ctx, uint32_t uid, uint64_t modseq)
{
	(void)modseq;
	struct snap_changes *ch = ctx;
	if (ch->n_expunged == ch->cap_expunged) {
		ch->cap_expunged = ch->cap_expunged == 0 ? 64 : ch->cap_expunged * 2;
		ch->expunged = xrealloc(ch->expunged, ch->cap_expunged * sizeof(uint32_t));
	}
	ch->expunged[ch->n_expunged++] = uid;
}

/* Merge the changes into sn (all three lists in UID order): expunged UIDs go, changed
 * entries replace or join. The changed array's keywords move into sn. */
static void snap_merge(struct snap *sn, struct snap_changes *ch)
{
	if (ch->n_changed == 0 && ch->n_expunged == 0)
		return;
	size_t cap = sn->n + ch->n_changed, n = 0, i = 0, j = 0, k = 0;
	struct snap_entry *v = xmalloc((cap == 0 ? 1 : cap) * sizeof(*v));
	while (i < sn->n || j < ch->n_changed) {
		struct snap_entry *old = i < sn->n ? &sn->v[i] : NULL;
		struct snap_entry *new = j < ch->n_changed ? &ch->changed[j] : NULL;
		if (new != NULL && (old == NULL || new->uid <= old->uid)) {
			if (old != NULL && new->uid == old->uid) {
				free(old->keywords);
				i++;
			}
			v[n++] = *new;
			j++;
			continue;
		}
		while (k < ch->n_expunged && ch->expunged[k] < old->uid)
			k++;
		if (k < ch->n_expunged && ch->expunged[k] == old->uid)
			free(old->keywords);
		else
			v[n++] = *old;
		i++;
	}
	free(sn->v);
	sn->v = v;
	sn->n = n;
	sn->cap = cap;
	ch->n_changed = 0;
}

/* Bring sn up to date; 1 (with *st, messages its count), 0 no such mailbox, -1 error, 2
 * the copy cannot be used (another UIDVALIDITY). Under sn->lock. */
static int snap_update(struct store *store, struct snap *sn, struct store_mailbox_status *st)
{
	struct snap_changes ch = {0};
	int r = store->v->mailbox_changes(store, sn->account_id, sn->mailbox, sn->modseq,
	                                  snap_changed_entry, snap_expunged_uid, &ch, st);
	/* Tombstones up to the floor may be gone: a copy older than it cannot learn every
	 * expunge since, and reads in full. */
	if (r == 1 && (st->uidvalidity != sn->uidvalidity || st->tombstone_floor > sn->modseq))
		r = 2;
	if (r == 1) {
		snap_merge(sn, &ch);
		sn->modseq = st->highestmodseq;
		st->messages = (uint32_t)sn->n;
		/* Cheap sanity: UIDs ascend below UIDNEXT. */
		for (size_t i = 0; r == 1 && i < sn->n; i++)
			if ((i > 0 && sn->v[i].uid <= sn->v[i - 1].uid) ||
			    sn->v[i].uid >= st->uidnext)
				r = 2;
	}
	snap_entries_free(ch.changed, ch.n_changed);
	free(ch.expunged);
	return r;
}

int store_snapcache_snapshot(struct store *store, uint64_t account_id, const char *mailbox,
                             struct store_mailbox_status *status_r,
                             void (*cb)(void *ctx, const struct store_entry *entry), void *ctx)
{
	struct store_snapcache *c = store->snapcache;
	struct snap *sn = NULL;
	pthread_mutex_lock(&c->lock);
	for (struct snap *p = c->list; p != NULL; p = p->next) {
		if (p->account_id == account_id && strcmp(p->mailbox, mailbox) == 0) {
			sn = p;
			sn->refs++;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);

	if (sn != NULL) {
		pthread_mutex_lock(&sn->lock);
		size_t before = sn->n;
		int r = snap_update(store, sn, status_r);
		if (r == 0 || r == 1) {
			for (size_t i = 0; r == 1 && i < sn->n; i++) {
				const struct snap_entry *e = &sn->v[i];
				struct store_entry entry = {
				    .uid = e->uid,
				    .size = e->size,
				    .internal_date = e->internal_date,
				    .save_date = e->save_date,
				    .flags = e->flags,
				    .modseq = e->modseq,
				    .keywords = e->keywords != NULL ? e->keywords : "",
				};
				cb(ctx, &entry);
			}
		}
		size_t after = sn->n;
		pthread_mutex_unlock(&sn->lock);
		pthread_mutex_lock(&c->lock);
		c->total = c->total - before + after;
		sn->used = time(NULL);
		sn->refs--;
		if (r != 1 && sn->refs == 0)
			snap_drop_locked(c, sn); /* gone, failed or unusable */
		pthread_mutex_unlock(&c->lock);
		if (r == 0 || r == 1)
			return r;
		if (r < 0)
			return -1;
		/* 2: read in full */
	}

	struct snap_full f = {.cb = cb, .ctx = ctx};
	int r =
	    store->v->mailbox_snapshot(store, account_id, mailbox, status_r, snap_full_entry, &f);
	if (r == 1)
		snap_keep(store, account_id, mailbox, status_r, &f);
	else
		snap_entries_free(f.v, f.n);
	return r;
}

size_t store_snapcache_entries(struct store *store)
{
	pthread_mutex_lock(&store->snapcache->lock);
	size_t n = store->snapcache->total;
	pthread_mutex_unlock(&store->snapcache->lock);
	return n;
}
