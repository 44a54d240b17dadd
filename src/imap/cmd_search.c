/* SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4): criteria from imap_search.c
 * matched against the session's view; "* SEARCH" for IMAP4rev1 clients, "* ESEARCH" with
 * RETURN options (RFC 4731) or after ENABLE IMAP4rev2; the saved result "$" (RFC 5182).
 * Message files are read only for keys that need them, and such a search runs in slices of
 * about 20 ms, yielding to the event loop in between, so a big mailbox does not stall the
 * other sessions of the thread. No EXPUNGE is sent during SEARCH (RFC 9051 §7.5.1). */
#include "imap/imap_commands.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_search.h"
#include "imap/imap_seqset.h"
#include "core/banned.h"

/* Time a search may hold the loop before it yields (messages read from disk only). */
#define CMD_SEARCH_SLICE_NS (20 * 1000 * 1000)
/* Octets read at a time while looking for the end of a header section. */

struct cmd_search_saved {
	uint32_t *uids; /* ascending */
	size_t count;
};

/* Messages whose files one queued read opens (store_reads_wait()): few round trips, at
 * most this many open files. */
#define CMD_SEARCH_READ_BATCH 32

/* A message whose file the search reads, opened ahead (cmd_search_open_read). */
struct cmd_search_file {
	uint32_t idx; /* in the view */
	uint32_t uid;
	int open_r; /* store_message_open(): 1, 0 gone, -1 error */
	int fd;     /* -1 once read or when not open */
	uint64_t size;
};

/* A search in progress. */
struct cmd_search_op {
	struct imap_session *s;
	struct cmd_search_file batch[CMD_SEARCH_READ_BATCH];
	size_t batch_pos, batch_count;
	bool unsorted;       /* hits were found out of order (batched reads): sort at the end */
	struct arena *arena; /* the criteria: they outlive the command arena when we yield */
	struct imap_search *search;
	unsigned ret; /* IMAP_SEARCH_RETURN_*; ALL when no RETURN was given */
	bool esearch, uid;
	char *tag, *name;
	uint32_t next;  /* view index of the next message to look at */
	uint32_t *hits; /* view indexes of the matches, ascending */
	size_t hit_count;
	bool failed; /* a store read before the search failed */
};

/* ---- the saved result ---- */

void cmd_search_saved_reset(struct imap_session *s)
{
	if (s->search_saved == NULL)
		return;
	free(s->search_saved->uids);
	free(s->search_saved);
	s->search_saved = NULL;
}

bool cmd_search_saved_contains(const struct imap_session *s, uint32_t uid)
{
	const struct cmd_search_saved *v = s->search_saved;
	size_t lo = 0, hi = v != NULL ? v->count : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->uids[mid] == uid)
			return true;
		if (v->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void cmd_search_saved_get(const struct imap_session *s, const uint32_t **uids_r, size_t *count_r)
{
	*uids_r = s->search_saved != NULL ? s->search_saved->uids : NULL;
	*count_r = s->search_saved != NULL ? s->search_saved->count : 0;
}

/* RFC 5182 §2.4: SAVE with MIN and/or MAX alone keeps just those; otherwise every match. */
static void cmd_search_save(struct imap_session *s, const struct cmd_search_op *o)
{
	cmd_search_saved_reset(s);
	if (o->hit_count == 0)
		return;
	struct cmd_search_saved *v = xcalloc(1, sizeof(*v));
	bool min_max_only = (o->ret & (IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX)) != 0 &&
	                    (o->ret & (IMAP_SEARCH_RETURN_ALL | IMAP_SEARCH_RETURN_COUNT)) == 0;
	v->uids = xmalloc(o->hit_count * sizeof(*v->uids));
	if (min_max_only) {
		if (o->ret & IMAP_SEARCH_RETURN_MIN)
			v->uids[v->count++] = s->msgs[o->hits[0]].uid;
		if ((o->ret & IMAP_SEARCH_RETURN_MAX) && (v->count == 0 || o->hit_count > 1))
			v->uids[v->count++] = s->msgs[o->hits[o->hit_count - 1]].uid;
	} else {
		for (size_t i = 0; i < o->hit_count; i++)
			v->uids[v->count++] = s->msgs[o->hits[i]].uid;
	}
	s->search_saved = v;
}

/* Does the command ask for SAVE? Looked at on its own when the criteria are refused:
 * a failed SEARCH with SAVE leaves "$" empty (RFC 5182 §2.1). */
static bool cmd_search_wants_save(const struct imap_arg *args)
{
	if (args[0].type != IMAP_ARG_ATOM || strcasecmp(args[0].str, "RETURN") != 0 ||
	    args[1].type != IMAP_ARG_LIST)
		return false;
	for (const struct imap_arg *a = args[1].list; a->type != IMAP_ARG_EOL; a++)
		if (a->type == IMAP_ARG_ATOM && strcasecmp(a->str, "SAVE") == 0)
			return true;
	return false;
}

/* Match a message whose file was opened: 1 match, 0 not, -1 the store failed. */
static int cmd_search_file_match(struct imap_session *s, const struct cmd_search_op *o,
                                 const struct imap_search_context *ctx, struct cmd_search_file *f)
{
	if (f->open_r < 0)
		return -1;
	struct imap_search_msg sm = cmd_msg_search_msg(s, f->idx);
	unsigned char *data = NULL;
	size_t len = 0;
	bool mapped = false;
	if (f->open_r == 1)
		cmd_msg_load(f->fd, f->size, !imap_search_needs_body(o->search, f->uid), &data,
		             &len, &mapped);
	f->fd = -1;
	/* Expunged by another session meanwhile (the view keeps it until the EXPUNGE may be
	 * sent): it is searched as an empty message. */
	int r = imap_search_match(o->search, ctx, &sm,
	                          data != NULL ? data : (const unsigned char *)"", len);
	if (data != NULL)
		cmd_msg_unload(data, len, mapped);
	return r;
}

/* Off the loop where reads wait: open the files of the batch. */
static void cmd_search_open_read(void *ctx)
{
	struct cmd_search_op *o = ctx;
	struct imap_session *s = o->s;
	for (size_t i = 0; i < o->batch_count; i++) {
		struct cmd_search_file *f = &o->batch[i];
		f->open_r = store_message_open(s->server->store, s->mailbox_owner, s->mailbox,
		                               f->uid, &f->fd, &f->size);
		if (f->open_r != 1)
			f->fd = -1;
	}
}

static void cmd_search_open_done(struct imap_session *s, void *ctx)
{
	(void)s;
	(void)ctx; /* the step goes on, or the session ends and frees the op */
}

static void cmd_search_batch_release(struct cmd_search_op *o)
{
	for (size_t i = o->batch_pos; i < o->batch_count; i++)
		if (o->batch[i].fd >= 0)
			close(o->batch[i].fd);
	o->batch_pos = o->batch_count = 0;
}

static void cmd_search_hit(struct cmd_search_op *o, uint32_t idx)
{
	if (o->hit_count > 0 && o->hits[o->hit_count - 1] > idx)
		o->unsorted = true;
	o->hits[o->hit_count++] = idx;
}

/* ---- answering ---- */

static void cmd_search_op_free(struct cmd_search_op *o)
{
	for (struct imap_search_emailid *e = o->search->emailids; e != NULL; e = e->next)
		free(e->uids);
	for (struct imap_search_text *t = o->search->texts; t != NULL; t = t->next)
		free(t->uids);
	free(o->search->unindexed);
	for (struct imap_search_hdr *h = o->search->hdrs; h != NULL; h = h->next)
		free(h->uids);
	free(o->search->hdr_unindexed);
	cmd_search_batch_release(o);
	arena_free(&o->arena);
	free(o->hits);
	free(o->tag);
	free(o->name);
	free(o);
}

static uint32_t cmd_search_number(const struct imap_session *s, const struct cmd_search_op *o,
                                  size_t hit)
{
	return o->uid ? s->msgs[o->hits[hit]].uid : o->hits[hit] + 1;
}

/* The highest MODSEQ of the hits from..to, inclusive (RFC 7162 §3.1.6,
 * §3.1.10). */
static uint64_t cmd_search_modseq(const struct imap_session *s, const struct cmd_search_op *o,
                                  size_t from, size_t to)
{
	uint64_t max = 0;
	for (size_t i = from; i <= to && i < o->hit_count; i++)
		if (s->msgs[o->hits[i]].modseq > max)
			max = s->msgs[o->hits[i]].modseq;
	return max;
}

/* "* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ m]" (RFC 9051
 * §7.3.4; MIN, MAX and ALL only when something matched, RFC 4731 §3.1; MODSEQ with a
 * MODSEQ key and a match, RFC 7162 §3.1.10: of the messages returned, so of MIN and MAX
 * alone when neither ALL nor COUNT was asked for). */
int cmd_esearch_head(struct buf *b, const char *tag, bool uid, unsigned ret, const uint32_t *nums,
                     size_t n)
{
	int r = buf_puts(b, "* ESEARCH (TAG ");
	imap_quote(b, tag);
	r |= buf_puts(b, ")");
	if (uid)
		r |= buf_puts(b, " UID");
	if (n > 0 && (ret & IMAP_SEARCH_RETURN_MIN))
		r |= buf_printf(b, " MIN %u", nums[0]);
	if (n > 0 && (ret & IMAP_SEARCH_RETURN_MAX))
		r |= buf_printf(b, " MAX %u", nums[n - 1]);
	if (ret & IMAP_SEARCH_RETURN_COUNT)
		r |= buf_printf(b, " COUNT %zu", n);
	if (n > 0 && (ret & IMAP_SEARCH_RETURN_ALL)) {
		const char *sep = " ALL ";
		for (size_t i = 0; i < n;) {
			uint32_t lo = nums[i], hi = lo;
			for (i++; i < n && nums[i] == hi + 1; i++)
				hi++;
			r |= lo == hi ? buf_printf(b, "%s%u", sep, lo)
			              : buf_printf(b, "%s%u:%u", sep, lo, hi);
			sep = ",";
		}
	}
	return r;
}

static int cmd_search_esearch(struct imap_session *s, const struct cmd_search_op *o, struct buf *b)
{
	size_t n = o->hit_count;
	uint32_t *nums = xcalloc(n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		nums[i] = cmd_search_number(s, o, i);
	int r = cmd_esearch_head(b, o->tag, o->uid, o->ret, nums, n);
	free(nums);
	if (n > 0 && o->search->modseq) {
		uint64_t m;
		if (o->ret & (IMAP_SEARCH_RETURN_ALL | IMAP_SEARCH_RETURN_COUNT)) {
			m = cmd_search_modseq(s, o, 0, n - 1);
		} else {
			m = (o->ret & IMAP_SEARCH_RETURN_MIN) ? cmd_search_modseq(s, o, 0, 0) : 0;
			uint64_t top = (o->ret & IMAP_SEARCH_RETURN_MAX)
			                   ? cmd_search_modseq(s, o, n - 1, n - 1)
			                   : 0;
			m = top > m ? top : m;
		}
		r |= buf_printf(b, " MODSEQ %llu", (unsigned long long)m);
	}
	return r;
}

static void cmd_search_finish(struct imap_session *s, struct cmd_search_op *o)
{
	if (o->ret & IMAP_SEARCH_RETURN_SAVE)
		cmd_search_save(s, o);
	struct buf b;
	/* 11 octets per number, 1 per separator, plus the frame */
	buf_init(&b, o->hit_count * 24 + strlen(o->tag) * 2 + 128);
	int r = 0;
	if (!o->esearch) {
		r |= buf_puts(&b, "* SEARCH");
		for (size_t i = 0; i < o->hit_count; i++)
			r |= buf_printf(&b, " %u", cmd_search_number(s, o, i));
		/* RFC 7162 §3.1.6: a non-empty answer to a MODSEQ search ends with the highest
		 * MODSEQ of the messages returned */
		if (o->hit_count > 0 && o->search->modseq)
			r |= buf_printf(
			    &b, " (MODSEQ %llu)",
			    (unsigned long long)cmd_search_modseq(s, o, 0, o->hit_count - 1));
	} else if (o->ret != IMAP_SEARCH_RETURN_SAVE) {
		/* SAVE alone asks for no ESEARCH response (RFC 5182 §2.1) */
		r |= cmd_search_esearch(s, o, &b);
	}
	if (b.len > 0 && r == 0 && buf_append(&b, "\r\n", 2) == 0 && !s->closed &&
	    s->io != IMAP_IO_CLOSING)
		conn_write(s->conn, b.data, b.len);
	buf_free(&b);
	imap_tagged(s, o->tag, "OK", "%s completed%s", o->name,
	            (o->ret & IMAP_SEARCH_RETURN_SAVE) ? ", result saved" : "");
}

static void cmd_search_failed(struct imap_session *s, struct cmd_search_op *o)
{
	if (o->ret & IMAP_SEARCH_RETURN_SAVE)
		cmd_search_saved_reset(s);
	IMAP_LOG(s, "event=search result=fail mailbox=\"%s\"", s->mailbox);
	imap_tagged(s, o->tag, "NO", "[UNAVAILABLE] %s failed: cannot read a message", o->name);
}

/* ---- running ---- */

static void cmd_search_op_free_ctx(void *ctx)
{
	cmd_search_op_free(ctx);
}

static int64_t cmd_search_elapsed_ns(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)(t.tv_sec - t0->tv_sec) * 1000000000 + (t.tv_nsec - t0->tv_nsec);
}

static int cmd_search_cmp_idx(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Look at the next messages without their files; those that need one go into the batch
 * (one in place when reads never wait, else up to CMD_SEARCH_READ_BATCH). false when the
 * time slice ran out first. */
static bool cmd_search_scan(struct imap_session *s, struct cmd_search_op *o,
                            const struct imap_search_context *ctx, const struct timespec *t0)
{
	size_t want = store_reads_wait(s->server->store) ? CMD_SEARCH_READ_BATCH : 1;
	o->batch_pos = o->batch_count = 0;
	while (o->next < s->count && o->batch_count < want) {
		uint32_t i = o->next++;
		struct imap_search_msg sm = cmd_msg_search_msg(s, i);
		int r = imap_search_match(o->search, ctx, &sm, NULL, 0);
		if (r == 1)
			cmd_search_hit(o, i);
		else if (r < 0)
			o->batch[o->batch_count++] =
			    (struct cmd_search_file){.idx = i, .uid = sm.uid, .fd = -1};
		if (i % 4096 == 0 && o->batch_count == 0 && o->next < s->count &&
		    cmd_search_elapsed_ns(t0) > CMD_SEARCH_SLICE_NS)
			return false;
	}
	return true;
}

/* One step (imap_session_run): look at messages until all are done or the slice is used
 * up; then answer, or yield to the loop (input stays paused, the view cannot change).
 * Files are opened by batches of store reads (imap_session_read). */
static enum imap_step cmd_search_step(struct imap_session *s, void *op)
{
	struct cmd_search_op *o = op;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct imap_search_context ctx = {
	    .count = s->count,
	    .max_uid = s->count > 0 ? s->msgs[s->count - 1].uid : 0,
	    .saved = s->search_saved != NULL ? s->search_saved->uids : NULL,
	    .saved_count = s->search_saved != NULL ? s->search_saved->count : 0,
	    .now = time(NULL),
	};
	for (;;) {
		while (o->batch_pos < o->batch_count) {
			struct cmd_search_file *f = &o->batch[o->batch_pos++];
			int r = cmd_search_file_match(s, o, &ctx, f);
			if (r < 0) {
				cmd_search_failed(s, o);
				return IMAP_STEP_DONE;
			}
			if (r == 1)
				cmd_search_hit(o, f->idx);
			if ((o->batch_pos < o->batch_count || o->next < s->count) &&
			    cmd_search_elapsed_ns(&t0) > CMD_SEARCH_SLICE_NS)
				return imap_progress_more(s, o->tag, o->next);
		}
		if (o->next >= s->count)
			break;
		if (!cmd_search_scan(s, o, &ctx, &t0))
			return imap_progress_more(s, o->tag, o->next);
		o->s = s;
		if (o->batch_count > 0 &&
		    !imap_session_read(s, cmd_search_open_read, cmd_search_open_done, o))
			return imap_progress_wait(s, o->tag, o->next);
	}
	if (o->unsorted)
		qsort(o->hits, o->hit_count, sizeof(*o->hits), cmd_search_cmp_idx);
	cmd_search_finish(s, o);
	return IMAP_STEP_DONE;
}

/* The search index's answers for the BODY and TEXT keys it can take (store.h): the
 * messages it does not hold, then each key's UIDs. A key the store cannot answer (an
 * error) is left to the messages' files. */
static void cmd_search_hdr_row(void *ctx, uint32_t uid, const char *hdr, size_t len)
{
	imap_search_hdr_add(ctx, uid, hdr, len);
}

/* The same for the header keys, from the header fields the index keeps
 * (store_search_hdr_each()). Shared with SORT and THREAD. */
void cmd_search_hdrs_read(struct imap_session *s, struct imap_search *search)
{
	if (search->hdrs == NULL || store_search_hdr_unindexed_uids(
	                                s->server->store, s->mailbox_owner, s->mailbox,
	                                &search->hdr_unindexed, &search->hdr_unindexed_count) != 1)
		return;
	for (struct imap_search_hdr *h = search->hdrs; h != NULL; h = h->next) {
		int r = store_search_hdr_each(s->server->store, s->mailbox_owner, s->mailbox,
		                              h->prefilter, cmd_search_hdr_row, h);
		h->indexed = r == 1 && !h->broken;
	}
}

static void cmd_search_texts_read(struct cmd_search_op *o)
{
	struct imap_session *s = o->s;
	struct imap_search *search = o->search;
	cmd_search_hdrs_read(s, search);
	if (search->texts == NULL ||
	    store_search_unindexed_uids(s->server->store, s->mailbox_owner, s->mailbox,
	                                &search->unindexed, &search->unindexed_count) != 1)
		return;
	for (struct imap_search_text *t = search->texts; t != NULL; t = t->next)
		t->indexed =
		    store_search_text_uids(s->server->store, s->mailbox_owner, s->mailbox,
		                           t->needle, t->body_only, &t->uids, &t->count) == 1;
}

/* Store reads (imap_session_read): the UIDs of each EMAILID key (RFC 8474 §6), and what
 * the search index answers. */
static void cmd_search_emailid_read(void *ctx)
{
	struct cmd_search_op *o = ctx;
	struct imap_session *s = o->s;
	for (struct imap_search_emailid *e = o->search->emailids; e != NULL; e = e->next)
		if (store_mailbox_emailid_uids(s->server->store, s->mailbox_owner, s->mailbox,
		                               e->id, &e->uids, &e->count) != 1)
			o->failed = true;
	cmd_search_texts_read(o);
}

static void cmd_search_start(struct imap_session *s, void *ctx)
{
	struct cmd_search_op *o = ctx;
	if (s->closed) {
		cmd_search_op_free(o);
		return;
	}
	if (o->failed) {
		cmd_search_failed(s, o);
		cmd_search_op_free(o);
		return;
	}
	o->hits = xmalloc(((size_t)s->count + 1) * sizeof(*o->hits));
	imap_session_run(s, cmd_search_step, cmd_search_op_free_ctx, o);
}

/* Header keys that would need the files of fewer than one message in this many (a narrow
 * UID range in a big mailbox, say) read those rather than every indexed row of the
 * mailbox: a row costs far less than a file, but not nothing. */
#define CMD_SEARCH_HDR_FEW 16

/* Do fewer than one in CMD_SEARCH_HDR_FEW messages of the view need their octets? */
static bool cmd_search_few_undecided(const struct imap_session *s, const struct imap_search *search)
{
	struct imap_search_context ctx = {
	    .count = s->count,
	    .max_uid = s->count > 0 ? s->msgs[s->count - 1].uid : 0,
	    .saved = s->search_saved != NULL ? s->search_saved->uids : NULL,
	    .saved_count = s->search_saved != NULL ? s->search_saved->count : 0,
	    .now = time(NULL),
	};
	size_t n = 0;
	for (uint32_t i = 0; i < s->count; i++) {
		struct imap_search_msg sm = cmd_msg_search_msg(s, i);
		if (imap_search_match(search, &ctx, &sm, NULL, 0) < 0 &&
		    ++n * CMD_SEARCH_HDR_FEW >= s->count)
			return false;
	}
	return true;
}

static void cmd_search_synced(struct imap_session *s, void *ctx)
{
	struct cmd_search_op *o = ctx;
	if (!s->closed && o->search->hdrs != NULL && cmd_search_few_undecided(s, o->search))
		o->search->hdrs = NULL; /* their files are cheaper than the index's rows */
	if (s->closed ||
	    (o->search->emailids == NULL && o->search->texts == NULL && o->search->hdrs == NULL)) {
		cmd_search_start(s, o);
		return;
	}
	o->s = s;
	(void)imap_session_read(s, cmd_search_emailid_read, cmd_search_start, o);
}

void cmd_search(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct arena *arena = arena_new(4096);
	struct imap_search *search;
	const char *error;
	if (imap_search_parse(arena, cmd->args, &search, &error) < 0) {
		if (cmd_search_wants_save(cmd->args))
			cmd_search_saved_reset(s);
		arena_free(&arena);
		imap_tagged(s, cmd->tag, "BAD", "%s", error);
		return;
	}
	if (s->uidonly && search->uses_seq) { /* RFC 9586 §3 */
		if (search->ret & IMAP_SEARCH_RETURN_SAVE)
			cmd_search_saved_reset(s);
		arena_free(&arena);
		imap_tagged(s, cmd->tag, "BAD", "[UIDREQUIRED] Message numbers are off (UIDONLY)");
		return;
	}
	if (search->charset != NULL && !imap_search_charset_supported(search->charset)) {
		if (search->ret & IMAP_SEARCH_RETURN_SAVE)
			cmd_search_saved_reset(s);
		arena_free(&arena);
		imap_tagged(s, cmd->tag, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return;
	}
	struct cmd_search_op *o = xcalloc(1, sizeof(*o));
	o->arena = arena;
	o->search = search;
	o->ret = search->has_return ? search->ret : IMAP_SEARCH_RETURN_ALL;
	o->esearch = search->has_return || s->rev2;
	o->uid = cmd->uid;
	o->tag = xstrdup(cmd->tag);
	o->name = xstrdup(cmd->name);
	if (search->modseq)
		(void)imap_session_condstore_enable(s); /* RFC 7162 §3.1 */
	/* New messages and flag changes first, so the search sees what the client will; no
	 * EXPUNGE during SEARCH (RFC 9051 §7.5.1), UID SEARCH may have them. */
	imap_session_sync(s, cmd->uid, cmd_search_synced, o);
}
