/* SORT and UID SORT (RFC 5256 §3, SORT=DISPLAY RFC 5957, ESORT RFC 5267 §3), THREAD and
 * UID THREAD (RFC 5256 §3, §4). The search criteria are SEARCH's (imap_search.c); the keys
 * of each matching message come from its header section only (store_message_open_want()
 * with the header flag: on PostgreSQL a chunked body is not fetched), parsed into a
 * scratch arena and kept as short collation keys (imap_sort.c, imap_thread.c), so a sort
 * over a large mailbox holds no message. The reading runs in slices of about 20 ms with
 * batched store reads, as SEARCH does; no EXPUNGE is sent meanwhile (RFC 9051 §7.5.1). */
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
#include "imap/imap_sort.h"
#include "imap/imap_thread.h"
#include "core/banned.h"

#define CMD_SORT_SLICE_NS (20 * 1000 * 1000)
#define CMD_SORT_READ_BATCH 32

struct cmd_sort_file {
	uint32_t idx; /* in the view */
	uint32_t uid;
	bool matched; /* the criteria matched without the octets */
	int open_r;   /* store_message_open_want(): 1, 0 gone, -1 error */
	int fd;
	uint64_t size;
};

struct cmd_sort_op {
	struct imap_session *s;
	struct cmd_sort_file batch[CMD_SORT_READ_BATCH];
	size_t batch_pos, batch_count;
	struct arena *arena;   /* criteria and the kept keys: they outlive the command */
	struct arena *scratch; /* one message's parsing, reset after each */
	struct imap_search *search;
	struct imap_sort_crit crit[IMAP_SORT_CRITERIA_MAX];
	size_t crit_count;
	bool thread;
	enum imap_thread_algo algo;
	bool esort; /* RETURN (...) given: the answer is ESEARCH (RFC 5267 §3) */
	unsigned ret;
	bool uid, header; /* header: the keys need the header section */
	char *tag, *name;
	uint32_t next;
	struct imap_sort_msg *sorted; /* SORT: one per match */
	struct imap_thread_msg *threaded;
	size_t hit_count;
};

/* ---- one match: its keys ---- */

static const char *cmd_sort_keep(struct cmd_sort_op *o, const char *s)
{
	return s[0] == '\0' ? "" : arena_strdup(o->arena, s);
}

/* Keep the keys of view entry idx, taken from hdr[0..len) (NULL when not needed). */
static void cmd_sort_hit(struct imap_session *s, struct cmd_sort_op *o, uint32_t idx,
                         const unsigned char *hdr, size_t len)
{
	const struct imap_msg *m = &s->msgs[idx];
	if (hdr == NULL) {
		hdr = (const unsigned char *)"";
		len = 0;
	}
	if (!o->thread) {
		struct imap_sort_msg k = {.seq = idx + 1,
		                          .uid = m->uid,
		                          .size = m->size,
		                          .arrival = m->date,
		                          .date = m->date,
		                          .subject = "",
		                          .from = "",
		                          .to = "",
		                          .cc = "",
		                          .display_from = "",
		                          .display_to = ""};
		if (o->header) {
			imap_sort_msg_headers(o->scratch, o->crit, o->crit_count, hdr, len, &k);
			k.subject = cmd_sort_keep(o, k.subject);
			k.from = cmd_sort_keep(o, k.from);
			k.to = cmd_sort_keep(o, k.to);
			k.cc = cmd_sort_keep(o, k.cc);
			k.display_from = cmd_sort_keep(o, k.display_from);
			k.display_to = cmd_sort_keep(o, k.display_to);
		}
		o->sorted[o->hit_count++] = k;
	} else {
		struct imap_thread_msg k = {.seq = idx + 1, .uid = m->uid, .arrival = m->date};
		imap_thread_msg_headers(o->scratch, hdr, len, &k);
		k.subject = cmd_sort_keep(o, k.subject);
		if (k.message_id != NULL)
			k.message_id = arena_strdup(o->arena, k.message_id);
		if (k.ref_count > 0) {
			const char **refs = arena_alloc(o->arena, k.ref_count * sizeof(*refs));
			for (size_t i = 0; i < k.ref_count; i++)
				refs[i] = arena_strdup(o->arena, k.refs[i]);
			k.refs = refs;
		}
		o->threaded[o->hit_count++] = k;
	}
	arena_reset(o->scratch);
}

/* Match (unless decided) and keep the keys of a message whose file was opened: 0, -1
 * the store failed. */
static int cmd_sort_file_done(struct imap_session *s, struct cmd_sort_op *o,
                              const struct imap_search_context *ctx, struct cmd_sort_file *f)
{
	if (f->open_r < 0)
		return -1;
	unsigned char *data = NULL;
	size_t len = 0;
	bool mapped = false;
	if (f->open_r == 1)
		cmd_msg_load(f->fd, f->size, (o->search->needs & IMAP_SEARCH_NEED_BODY) == 0, &data,
		             &len, &mapped);
	f->fd = -1;
	const unsigned char *p = data != NULL ? data : (const unsigned char *)"";
	/* expunged by another session meanwhile: an empty message, as SEARCH reads it */
	struct imap_search_msg sm = cmd_msg_search_msg(s, f->idx);
	if (f->matched || imap_search_match(o->search, ctx, &sm, p, len) == 1)
		cmd_sort_hit(s, o, f->idx, p, len);
	if (data != NULL)
		cmd_msg_unload(data, len, mapped);
	return 0;
}

static void cmd_sort_open_read(void *ctx)
{
	struct cmd_sort_op *o = ctx;
	struct imap_session *s = o->s;
	/* only the header, unless a BODY or TEXT key reads the rest */
	struct store_want w = {.header = true};
	const struct store_want *want = (o->search->needs & IMAP_SEARCH_NEED_BODY) ? NULL : &w;
	for (size_t i = 0; i < o->batch_count; i++) {
		struct cmd_sort_file *f = &o->batch[i];
		f->open_r = store_message_open_want(s->server->store, s->mailbox_owner, s->mailbox,
		                                    f->uid, want, &f->fd, &f->size);
		if (f->open_r != 1)
			f->fd = -1;
	}
}

static void cmd_sort_open_done(struct imap_session *s, void *ctx)
{
	(void)s;
	(void)ctx;
}

static void cmd_sort_batch_release(struct cmd_sort_op *o)
{
	for (size_t i = o->batch_pos; i < o->batch_count; i++)
		if (o->batch[i].fd >= 0)
			close(o->batch[i].fd);
	o->batch_pos = o->batch_count = 0;
}

static void cmd_sort_op_free(void *ctx)
{
	struct cmd_sort_op *o = ctx;
	cmd_sort_batch_release(o);
	for (struct imap_search_hdr *h = o->search != NULL ? o->search->hdrs : NULL; h != NULL;
	     h = h->next)
		free(h->uids);
	if (o->search != NULL)
		free(o->search->hdr_unindexed);
	arena_free(&o->arena);
	arena_free(&o->scratch);
	free(o->sorted);
	free(o->threaded);
	free(o->tag);
	free(o->name);
	free(o);
}

/* ---- answering ---- */

static uint32_t cmd_sort_number(const struct cmd_sort_op *o, struct imap_sort_msg *const *v,
                                size_t i)
{
	return o->uid ? v[i]->uid : v[i]->seq;
}

static uint64_t cmd_sort_modseq(const struct imap_session *s, const struct cmd_sort_op *o)
{
	uint64_t max = 0;
	for (size_t i = 0; i < o->hit_count; i++) {
		uint32_t seq = o->thread ? o->threaded[i].seq : o->sorted[i].seq;
		if (s->msgs[seq - 1].modseq > max)
			max = s->msgs[seq - 1].modseq;
	}
	return max;
}

/* "* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]" (RFC 5267 §3.1): MIN and
 * MAX the first and last in sort order, ALL in sort order (runs of consecutive ascending
 * numbers as ranges). */
static int cmd_sort_esearch(struct cmd_sort_op *o, struct imap_sort_msg *const *v, struct buf *b)
{
	size_t n = o->hit_count;
	uint32_t *nums = xcalloc(n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		nums[i] = cmd_sort_number(o, v, i);
	int r = cmd_esearch_head(b, o->tag, o->uid, o->ret, nums, n);
	free(nums);
	return r;
}

static int cmd_sort_answer(struct imap_session *s, struct cmd_sort_op *o, struct buf *b)
{
	struct imap_sort_msg **v = xmalloc((o->hit_count + 1) * sizeof(*v));
	for (size_t i = 0; i < o->hit_count; i++)
		v[i] = &o->sorted[i];
	imap_sort_msgs(o->crit, o->crit_count, v, o->hit_count);
	int r = 0;
	if (o->esort) {
		r = cmd_sort_esearch(o, v, b);
	} else {
		r = buf_puts(b, "* SORT");
		for (size_t i = 0; i < o->hit_count; i++)
			r |= buf_printf(b, " %u", cmd_sort_number(o, v, i));
	}
	/* RFC 7162 §3.1.5, §3.1.10: a MODSEQ search adds the highest MODSEQ of the result */
	if (o->hit_count > 0 && o->search->modseq)
		r |= buf_printf(b, o->esort ? " MODSEQ %llu" : " (MODSEQ %llu)",
		                (unsigned long long)cmd_sort_modseq(s, o));
	free(v);
	return r;
}

static void cmd_sort_finish(struct imap_session *s, struct cmd_sort_op *o)
{
	struct buf b;
	buf_init(&b, o->hit_count * 32 + strlen(o->tag) * 2 + 256);
	int r;
	if (o->thread) {
		struct arena *a = arena_new(16384);
		struct imap_thread_node *roots =
		    imap_thread_build(a, o->algo, o->threaded, o->hit_count);
		r = buf_puts(&b, "* THREAD");
		if (roots != NULL)
			r |= buf_puts(&b, " ") | imap_thread_format(roots, o->uid, &b);
		arena_free(&a);
	} else {
		r = cmd_sort_answer(s, o, &b);
	}
	if (r == 0 && buf_append(&b, "\r\n", 2) == 0 && !s->closed && s->io != IMAP_IO_CLOSING)
		conn_write(s->conn, b.data, b.len);
	buf_free(&b);
	if (r != 0) {
		imap_tagged(s, o->tag, "NO", "[LIMIT] %s result too large", o->name);
		return;
	}
	imap_tagged(s, o->tag, "OK", "%s completed", o->name);
}

/* ---- running ---- */

static int64_t cmd_sort_elapsed_ns(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)(t.tv_sec - t0->tv_sec) * 1000000000 + (t.tv_nsec - t0->tv_nsec);
}

/* The next messages without their files: decided ones kept, the others (and every match
 * whose keys need the header) into the batch. false when the slice ran out first. */
static bool cmd_sort_scan(struct imap_session *s, struct cmd_sort_op *o,
                          const struct imap_search_context *ctx, const struct timespec *t0)
{
	size_t want = store_reads_wait(s->server->store) ? CMD_SORT_READ_BATCH : 1;
	o->batch_pos = o->batch_count = 0;
	while (o->next < s->count && o->batch_count < want) {
		uint32_t i = o->next++;
		struct imap_search_msg sm = cmd_msg_search_msg(s, i);
		int r = imap_search_match(o->search, ctx, &sm, NULL, 0);
		if (r == 1 && !o->header)
			cmd_sort_hit(s, o, i, NULL, 0);
		else if (r != 0)
			o->batch[o->batch_count++] = (struct cmd_sort_file){
			    .idx = i, .uid = sm.uid, .matched = r == 1, .fd = -1};
		if (i % 4096 == 0 && o->batch_count == 0 && o->next < s->count &&
		    cmd_sort_elapsed_ns(t0) > CMD_SORT_SLICE_NS)
			return false;
	}
	return true;
}

static enum imap_step cmd_sort_step(struct imap_session *s, void *op)
{
	struct cmd_sort_op *o = op;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const uint32_t *saved;
	size_t saved_count;
	cmd_search_saved_get(s, &saved, &saved_count);
	struct imap_search_context ctx = {
	    .count = s->count,
	    .max_uid = s->count > 0 ? s->msgs[s->count - 1].uid : 0,
	    .saved = saved,
	    .saved_count = saved_count,
	    .now = time(NULL),
	};
	for (;;) {
		while (o->batch_pos < o->batch_count) {
			struct cmd_sort_file *f = &o->batch[o->batch_pos++];
			if (cmd_sort_file_done(s, o, &ctx, f) < 0) {
				IMAP_LOG(s, "event=sort result=fail mailbox=\"%s\"", s->mailbox);
				imap_tagged(s, o->tag, "NO",
				            "[UNAVAILABLE] %s failed: cannot read a message",
				            o->name);
				return IMAP_STEP_DONE;
			}
			if ((o->batch_pos < o->batch_count || o->next < s->count) &&
			    cmd_sort_elapsed_ns(&t0) > CMD_SORT_SLICE_NS)
				return imap_progress_more(s, o->tag, o->next);
		}
		if (o->next >= s->count)
			break;
		if (!cmd_sort_scan(s, o, &ctx, &t0))
			return imap_progress_more(s, o->tag, o->next);
		o->s = s;
		if (o->batch_count > 0 &&
		    !imap_session_read(s, cmd_sort_open_read, cmd_sort_open_done, o))
			return imap_progress_wait(s, o->tag, o->next);
	}
	cmd_sort_finish(s, o);
	return IMAP_STEP_DONE;
}

static void cmd_sort_begin(struct imap_session *s, void *ctx)
{
	struct cmd_sort_op *o = ctx;
	if (s->closed) {
		cmd_sort_op_free(o);
		return;
	}
	size_t n = (size_t)s->count + 1;
	if (o->thread)
		o->threaded = xcalloc(n, sizeof(*o->threaded));
	else
		o->sorted = xcalloc(n, sizeof(*o->sorted));
	imap_session_run(s, cmd_sort_step, cmd_sort_op_free, o);
}

/* A store read: the search index's answers for the header keys of the criteria. */
static void cmd_sort_hdrs_read(void *ctx)
{
	struct cmd_sort_op *o = ctx;
	cmd_search_hdrs_read(o->s, o->search);
}

static void cmd_sort_synced(struct imap_session *s, void *ctx)
{
	struct cmd_sort_op *o = ctx;
	if (s->closed || o->search->hdrs == NULL) {
		cmd_sort_begin(s, o);
		return;
	}
	o->s = s;
	(void)imap_session_read(s, cmd_sort_hdrs_read, cmd_sort_begin, o);
}

/* "RETURN (MIN MAX COUNT ALL)" of ESORT (RFC 5267 §3.1); "RETURN ()" is ALL. SAVE is not
 * offered with SORT. 0 or -1 (BAD). */
static int cmd_sort_parse_return(const struct imap_arg *list, unsigned *ret_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {{"MIN", IMAP_SEARCH_RETURN_MIN},
	            {"MAX", IMAP_SEARCH_RETURN_MAX},
	            {"ALL", IMAP_SEARCH_RETURN_ALL},
	            {"COUNT", IMAP_SEARCH_RETURN_COUNT}};
	*ret_r = 0;
	for (; list->type != IMAP_ARG_EOL; list++) {
		size_t i = 0;
		while (i < 4 &&
		       (list->type != IMAP_ARG_ATOM || strcasecmp(list->str, opts[i].name) != 0))
			i++;
		if (i == 4)
			return -1;
		*ret_r |= opts[i].bit;
	}
	if (*ret_r == 0)
		*ret_r = IMAP_SEARCH_RETURN_ALL;
	return 0;
}

/* The charset argument and the criteria after it, into o; 0, or -1 answered. */
static int cmd_sort_criteria(struct imap_cmd *cmd, struct cmd_sort_op *o, const struct imap_arg *a)
{
	struct imap_session *s = cmd->s;
	const char *error;
	if (!imap_parser_arg_is_string(a) || memchr(a->str, '\0', a->len) != NULL) {
		imap_tagged(s, cmd->tag, "BAD", "%s needs a charset", cmd->name);
		return -1;
	}
	const char *charset = a->str;
	if (a[1].type == IMAP_ARG_EOL) {
		imap_tagged(s, cmd->tag, "BAD", "%s needs search criteria", cmd->name);
		return -1;
	}
	if (imap_search_parse(o->arena, a + 1, &o->search, &error) < 0) {
		imap_tagged(s, cmd->tag, "BAD", "%s", error);
		return -1;
	}
	if (s->uidonly && o->search->uses_seq) { /* RFC 9586 §3 */
		imap_tagged(s, cmd->tag, "BAD", "[UIDREQUIRED] Message numbers are off (UIDONLY)");
		return -1;
	}
	/* RFC 5256 §3: the charset is required; unsupported ones get NO [BADCHARSET] */
	if (!imap_search_charset_supported(charset) ||
	    (o->search->charset != NULL && !imap_search_charset_supported(o->search->charset))) {
		imap_tagged(s, cmd->tag, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return -1;
	}
	if (o->search->has_return) {
		imap_tagged(s, cmd->tag, "BAD", "RETURN goes before the sort program");
		return -1;
	}
	return 0;
}

static struct cmd_sort_op *cmd_sort_op_new(struct imap_cmd *cmd)
{
	struct cmd_sort_op *o = xcalloc(1, sizeof(*o));
	o->arena = arena_new(16384);
	o->scratch = arena_new(16384);
	o->uid = cmd->uid;
	o->tag = xstrdup(cmd->tag);
	o->name = xstrdup(cmd->name);
	return o;
}

static void cmd_sort_start(struct imap_cmd *cmd, struct cmd_sort_op *o)
{
	if (o->search->modseq)
		(void)imap_session_condstore_enable(cmd->s); /* RFC 7162 §3.1 */
	imap_session_sync(cmd->s, cmd->uid, cmd_sort_synced, o);
}

/* SORT [RETURN (opts)] (program) charset criteria (RFC 5256 §3, RFC 5267 §3). */
void cmd_sort(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	struct cmd_sort_op *o = cmd_sort_op_new(cmd);
	const char *error;
	if (a->type == IMAP_ARG_ATOM && strcasecmp(a->str, "RETURN") == 0) {
		if (a[1].type != IMAP_ARG_LIST || cmd_sort_parse_return(a[1].list, &o->ret) < 0) {
			imap_tagged(s, cmd->tag, "BAD",
			            "Invalid RETURN options (MIN MAX ALL COUNT)");
			cmd_sort_op_free(o);
			return;
		}
		o->esort = true;
		a += 2;
	}
	if (a->type != IMAP_ARG_LIST) {
		imap_tagged(s, cmd->tag, "BAD", "SORT needs a sort program in parentheses");
		cmd_sort_op_free(o);
		return;
	}
	if (imap_sort_parse_program(a->list, o->crit, &o->crit_count, &error) < 0) {
		imap_tagged(s, cmd->tag, "BAD", "%s", error);
		cmd_sort_op_free(o);
		return;
	}
	if (cmd_sort_criteria(cmd, o, a + 1) < 0) {
		cmd_sort_op_free(o);
		return;
	}
	o->header = imap_sort_needs_header(o->crit, o->crit_count);
	cmd_sort_start(cmd, o);
}

/* THREAD algorithm charset criteria (RFC 5256 §3). */
void cmd_thread(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	struct cmd_sort_op *o = cmd_sort_op_new(cmd);
	if (a->type != IMAP_ARG_ATOM || imap_thread_algo_parse(a->str, &o->algo) < 0) {
		imap_tagged(s, cmd->tag, "BAD",
		            "Unknown thread algorithm (ORDEREDSUBJECT, REFERENCES)");
		cmd_sort_op_free(o);
		return;
	}
	if (cmd_sort_criteria(cmd, o, a + 1) < 0) {
		cmd_sort_op_free(o);
		return;
	}
	o->thread = true;
	o->header = true;
	cmd_sort_start(cmd, o);
}
