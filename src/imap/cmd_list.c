/* LIST (RFC 9051 §6.3.9) with LIST-EXTENDED selection and return options (RFC 5258),
 * CHILDREN (RFC 3348), SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819), and LSUB for
 * IMAP4rev1 clients (RFC 3501 §6.3.9). One store snapshot of the account's names is
 * completed with every ancestor, matched against the patterns ('*' any, '%' any but the
 * '/' delimiter) and sent with its attributes. */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/utf7.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define LIST_PATTERNS_MAX 64
/* Pattern-matching steps (one name position per pattern octet) one command may spend; a
 * LIST of hundreds of names costs a few thousand. Many long patterns against thousands of
 * long names would otherwise hold the loop thread for seconds. */
#define LIST_MATCH_BUDGET (64u * 1024 * 1024)

struct list_req {
	bool lsub;
	bool sel_subscribed, sel_special, sel_recursive;
	/* RETURN (SPECIAL-USE) and (CHILDREN) change nothing: those attributes always come. */
	bool ret_subscribed, ret_special, ret_children;
	bool ret_myrights; /* RETURN (MYRIGHTS), RFC 8440 */
	unsigned ret_status;                     /* cmd_status_items() bits, 0 = none */
	const char *patterns[LIST_PATTERNS_MAX]; /* UTF-8, reference prepended; NULL = matches
	                                            nothing (a pattern that does not decode) */
	size_t pattern_count;
	uint64_t budget; /* LIST_MATCH_BUDGET, spent by list_matches_any() */
	bool exhausted;
};

struct list_name {
	const char *name; /* in the command arena */
	unsigned special;
	bool exists, children, subscribed;
	bool matched, selected, childinfo;
	/* a mailbox of another account (the shared namespace, imap_acl.h): its owner (0: the
	 * session's own), its name there and the session's rights on it */
	uint64_t owner;
	const char *store_name;
	unsigned rights;
	/* LIST-STATUS (RFC 5819): read in batches before the names are sent */
	bool stat_read;
	int stat_r; /* store_mailbox_stats(): 1, 0 none, -1 error */
	struct store_mailbox_stats st;
};

struct list_names {
	struct arena *arena;
	struct list_name *v;
	size_t count, cap;
};

/* ---- matching ---- */

/* Collapse runs of wildcards ("*%*" is "*", "%%" is "%"): matching cost then stays
 * proportional to the name. Into the arena. */
static const char *list_pattern_collapse(struct arena *a, const char *pat)
{
	size_t len = strlen(pat);
	char *out = arena_alloc(a, len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		if (pat[i] != '*' && pat[i] != '%') {
			out[o++] = pat[i++];
			continue;
		}
		bool star = false;
		while (i < len && (pat[i] == '*' || pat[i] == '%'))
			star |= pat[i++] == '*';
		out[o++] = star ? '*' : '%';
	}
	out[o] = '\0';
	return out;
}

/* Does name match pat? '*' matches any run, '%' any run without '/'. The first level
 * INBOX compares case-insensitively (RFC 9051 §5.1), every other octet exactly. One pass
 * over the pattern, keeping which name prefixes the pattern so far matches. */
static bool list_match(const char *pat, const char *name)
{
	size_t n = strlen(name);
	if (n > STORE_MAILBOX_NAME_MAX)
		return false;
	size_t ci =
	    strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/') ? 5 : 0;
	bool a[STORE_MAILBOX_NAME_MAX + 1], b[STORE_MAILBOX_NAME_MAX + 1];
	bool *cur = a, *next = b;
	memset(cur, 0, (n + 1) * sizeof(bool));
	cur[0] = true;
	for (const char *p = pat; *p != '\0'; p++) {
		bool any = false, run = false;
		for (size_t j = 0; j <= n; j++) {
			if (*p == '*') {
				run = run || cur[j];
				next[j] = run;
			} else if (*p == '%') {
				if (j > 0 && name[j - 1] == '/')
					run = false;
				run = run || cur[j];
				next[j] = run;
			} else if (j == 0) {
				next[j] = false;
			} else {
				char c = name[j - 1];
				bool eq = j - 1 < ci ? toupper((unsigned char)c) ==
				                           toupper((unsigned char)*p)
				                     : c == *p;
				next[j] = cur[j - 1] && eq;
			}
			any |= next[j];
		}
		if (!any)
			return false;
		bool *t = cur;
		cur = next;
		next = t;
	}
	return cur[n];
}

static bool list_matches_any(struct list_req *req, const char *name)
{
	uint64_t positions = strlen(name) + 1;
	for (size_t i = 0; i < req->pattern_count; i++) {
		if (req->patterns[i] == NULL)
			continue;
		uint64_t cost = strlen(req->patterns[i]) * positions;
		if (cost > req->budget) {
			req->exhausted = true;
			return false;
		}
		req->budget -= cost;
		if (list_match(req->patterns[i], name))
			return true;
	}
	return false;
}

/* ---- the names ---- */

static void list_names_add(struct list_names *n, const char *name, size_t len,
                           const struct store_mailbox_info *info)
{
	if (n->count == n->cap) {
		n->cap = n->cap == 0 ? 64 : 2 * n->cap;
		n->v = xrealloc(n->v, n->cap * sizeof(*n->v));
	}
	struct list_name *e = &n->v[n->count++];
	memset(e, 0, sizeof(*e));
	e->name = arena_strndup(n->arena, name, len);
	if (info != NULL) {
		e->special = info->special_use;
		e->exists = info->exists;
		e->children = info->has_children;
		e->subscribed = info->subscribed;
	}
}

/* A name from the store, and each of its ancestors as a bare name: a subscription
 * "a/b/c" makes "a" and "a/b" known, so LSUB and RECURSIVEMATCH can report them. */
static void list_names_cb(void *ctx, const struct store_mailbox_info *info)
{
	struct list_names *n = ctx;
	list_names_add(n, info->name, strlen(info->name), info);
	for (const char *sl = strchr(info->name, '/'); sl != NULL; sl = strchr(sl + 1, '/'))
		list_names_add(n, info->name, (size_t)(sl - info->name), NULL);
}

static int list_name_cmp(const void *x, const void *y)
{
	return strcmp(((const struct list_name *)x)->name, ((const struct list_name *)y)->name);
}

/* A mailbox of another account the session may look up, as "Shared/owner/name", and its
 * levels above ("Shared", "Shared/owner", ...) as parents with children. */
static void list_shared_cb(void *ctx, uint64_t owner_id, const char *owner, const char *mailbox,
                           unsigned rights)
{
	struct list_names *n = ctx;
	if ((rights & STORE_ACL_LOOKUP) == 0)
		return;
	size_t a = strlen(IMAP_ACL_SHARED_PREFIX), b = strlen(owner), c = strlen(mailbox);
	char *name = arena_alloc(n->arena, a + b + c + 2);
	memcpy(name, IMAP_ACL_SHARED_PREFIX, a);
	memcpy(name + a, owner, b);
	name[a + b] = '/';
	memcpy(name + a + b + 1, mailbox, c + 1);
	struct store_mailbox_info info = {.name = name, .exists = true};
	list_names_add(n, name, strlen(name), &info);
	struct list_name *e = &n->v[n->count - 1];
	e->owner = owner_id;
	e->store_name = name + a + b + 1;
	e->rights = rights;
	struct store_mailbox_info parent = {.has_children = true};
	list_names_add(n, name, strlen(IMAP_ACL_SHARED), &parent);
	for (const char *sl = name + a + b; sl != NULL; sl = strchr(sl + 1, '/'))
		list_names_add(n, name, (size_t)(sl - name), &parent);
}

/* Sort and fold the records of one name together. */
static void list_names_merge(struct list_names *n)
{
	size_t out = 0;
	if (n->count > 0)
		qsort(n->v, n->count, sizeof(*n->v), list_name_cmp);
	for (size_t i = 0; i < n->count; i++) {
		struct list_name *cur = &n->v[i];
		if (out > 0 && strcmp(n->v[out - 1].name, cur->name) == 0) {
			struct list_name *prev = &n->v[out - 1];
			prev->special |= cur->special;
			prev->exists |= cur->exists;
			prev->children |= cur->children;
			prev->subscribed |= cur->subscribed;
			if (cur->owner != 0) {
				prev->owner = cur->owner;
				prev->store_name = cur->store_name;
				prev->rights = cur->rights;
			}
			continue;
		}
		n->v[out++] = *cur;
	}
	n->count = out;
}

static struct list_name *list_names_find(struct list_names *n, const char *name)
{
	struct list_name key = {.name = name};
	return bsearch(&key, n->v, n->count, sizeof(*n->v), list_name_cmp);
}

/* Does the name meet the selection criteria (RFC 5258 §3: all of them)? Without any, LIST
 * reports mailboxes and the \Noselect parents of mailboxes; LSUB subscriptions. */
static bool list_selected(const struct list_req *req, const struct list_name *e)
{
	if (req->lsub || req->sel_subscribed) {
		if (!e->subscribed)
			return false;
	} else if (!e->exists && !e->children) {
		return false;
	}
	return !req->sel_special || (e->exists && e->special != 0);
}

/* RECURSIVEMATCH (RFC 5258 §3.5) and LSUB's '%' rule (RFC 3501 §6.3.9): a name that
 * matches a pattern is reported (with CHILDINFO under RECURSIVEMATCH) when a descendant
 * meets the criteria but is not reported itself. */
static void list_childinfo(struct list_names *n)
{
	for (size_t i = 0; i < n->count; i++) {
		const struct list_name *e = &n->v[i];
		if (!e->selected || e->matched)
			continue;
		char *name = arena_strdup(n->arena, e->name);
		for (char *sl = strrchr(name, '/'); sl != NULL; sl = strrchr(name, '/')) {
			*sl = '\0';
			struct list_name *parent = list_names_find(n, name);
			if (parent != NULL && parent->matched)
				parent->childinfo = true;
		}
	}
}

/* ---- output ---- */

static int list_attr(struct buf *b, const char *attr)
{
	if (b->len > 0 && buf_puts(b, " ") < 0)
		return -1;
	return buf_puts(b, attr);
}

static void list_attrs(const struct list_req *req, const struct list_name *e, struct buf *b)
{
	static const struct {
		unsigned bit;
		const char *name;
	} specials[] = {
	    {STORE_SPECIAL_ALL, "\\All"},       {STORE_SPECIAL_ARCHIVE, "\\Archive"},
	    {STORE_SPECIAL_DRAFTS, "\\Drafts"}, {STORE_SPECIAL_FLAGGED, "\\Flagged"},
	    {STORE_SPECIAL_JUNK, "\\Junk"},     {STORE_SPECIAL_SENT, "\\Sent"},
	    {STORE_SPECIAL_TRASH, "\\Trash"},
	};
	int r = 0;
	if (req->lsub) {
		/* RFC 3501 §6.3.9: an unsubscribed parent shown for '%' is \Noselect; so is a
		 * subscription to a name that cannot be selected. */
		if (!e->subscribed || !e->exists)
			(void)list_attr(b, "\\Noselect");
		return;
	}
	if (!e->exists)
		r |= list_attr(b, e->children ? "\\Noselect" : "\\NonExistent");
	/* CHILDREN (RFC 3348, RFC 5258 §4) is cheap here: always sent, as RFC 5258 allows. */
	r |= list_attr(b, e->children ? "\\HasChildren" : "\\HasNoChildren");
	if ((req->ret_subscribed || req->sel_subscribed) && e->subscribed)
		r |= list_attr(b, "\\Subscribed");
	/* RFC 6154 §2: special-use attributes in every LIST response of a mailbox. */
	for (size_t i = 0; e->exists && i < sizeof(specials) / sizeof(specials[0]); i++)
		if (e->special & specials[i].bit)
			r |= list_attr(b, specials[i].name);
	(void)r; /* b is sized for every attribute */
}

static void list_send(struct imap_session *s, const struct list_req *req, const struct list_name *e)
{
	struct buf attrs, line;
	buf_init(&attrs, 512);
	buf_init(&line, 16 * STORE_MAILBOX_NAME_MAX + 1024);
	list_attrs(req, e, &attrs);
	int r =
	    buf_printf(&line, "* %s (%s) \"/\" ", req->lsub ? "LSUB" : "LIST", buf_cstr(&attrs));
	cmd_status_mailbox_name(s, &line, e->name);
	if (r == 0 && req->sel_recursive && e->childinfo)
		r = buf_puts(&line, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	if (r == 0)
		imap_send(s, "%s", buf_cstr(&line));
	buf_free(&attrs);
	buf_free(&line);
	/* RFC 5819 §2: a STATUS response after the LIST response of each selectable one. */
	if (r == 0 && req->ret_status != 0 && e->exists && e->stat_r == 1)
		(void)cmd_status_send(s, e->name, req->ret_status, &e->st);
	/* RFC 8440 §2: MYRIGHTS after each selectable mailbox's LIST (and STATUS). */
	if (r == 0 && req->ret_myrights && e->exists && !req->lsub) {
		char rights[sizeof(STORE_ACL_LETTERS)];
		store_acl_rights_string(e->owner != 0 ? e->rights : STORE_ACL_ALL, rights);
		buf_init(&line, 16 * STORE_MAILBOX_NAME_MAX + 64);
		if (buf_puts(&line, "* MYRIGHTS ") == 0) {
			cmd_status_mailbox_name(s, &line, e->name);
			if (buf_printf(&line, " \"%s\"", rights) == 0)
				imap_send(s, "%s", buf_cstr(&line));
		}
		buf_free(&line);
	}
}

/* ---- arguments ---- */

static bool list_selection(struct list_req *req, const struct imap_arg *list)
{
	bool remote = false;
	for (const struct imap_arg *a = list; a->type != IMAP_ARG_EOL; a++) {
		if (a->type != IMAP_ARG_ATOM)
			return false;
		if (strcasecmp(a->str, "SUBSCRIBED") == 0)
			req->sel_subscribed = true;
		else if (strcasecmp(a->str, "SPECIAL-USE") == 0)
			req->sel_special = true;
		else if (strcasecmp(a->str, "RECURSIVEMATCH") == 0)
			req->sel_recursive = true;
		else if (strcasecmp(a->str, "REMOTE") == 0)
			remote = true; /* no remote mailboxes: nothing to add */
		else
			return false; /* RFC 5258 §3: BAD for an unknown option */
	}
	(void)remote;
	/* RFC 5258 §3: RECURSIVEMATCH never alone (or with REMOTE only); we give CHILDINFO for
	 * SUBSCRIBED, so it needs SUBSCRIBED. */
	return !req->sel_recursive || req->sel_subscribed;
}

static bool list_return(struct list_req *req, const struct imap_arg *list)
{
	for (const struct imap_arg *a = list; a->type != IMAP_ARG_EOL; a++) {
		if (a->type != IMAP_ARG_ATOM)
			return false;
		if (strcasecmp(a->str, "SUBSCRIBED") == 0) {
			req->ret_subscribed = true;
		} else if (strcasecmp(a->str, "CHILDREN") == 0) {
			req->ret_children = true;
		} else if (strcasecmp(a->str, "SPECIAL-USE") == 0) {
			req->ret_special = true;
		} else if (strcasecmp(a->str, "MYRIGHTS") == 0) {
			req->ret_myrights = true;
		} else if (strcasecmp(a->str, "STATUS") == 0) {
			if ((req->ret_status = cmd_status_items(a + 1)) == 0)
				return false;
			a++;
		} else {
			return false;
		}
	}
	return true;
}

/* reference + pattern in the client's encoding, as UTF-8 (NULL: cannot match anything). */
static const char *list_full_pattern(struct imap_session *s, const char *ref, const char *pat)
{
	size_t rl = strlen(ref), pl = strlen(pat);
	char *full = arena_alloc(s->cmd, rl + pl + 1);
	memcpy(full, ref, rl);
	memcpy(full + rl, pat, pl + 1);
	/* Collapse before decoding: '*' and '%' never occur inside a modified UTF-7 shift
	 * (not in its base64 alphabet), and the decoder takes names, not 40 KB patterns. */
	return imap_commands_mailbox_name(s, list_pattern_collapse(s->cmd, full));
}

/* Parse LIST/LSUB arguments into req; false = BAD. *empty_r: the delimiter request
 * (a single "" pattern, RFC 9051 §6.3.9). */
static bool list_parse(struct imap_cmd *cmd, struct list_req *req, bool *empty_r)
{
	const struct imap_arg *a = cmd->args;
	const char *ref, *pat;
	*empty_r = false;
	if (!req->lsub && a->type == IMAP_ARG_LIST) {
		if (!list_selection(req, a->list))
			return false;
		a++;
	}
	if (!imap_commands_astring(a, &ref))
		return false;
	a++;
	if (!req->lsub && a->type == IMAP_ARG_LIST) {
		for (const struct imap_arg *p = a->list; p->type != IMAP_ARG_EOL; p++) {
			if (!imap_commands_astring(p, &pat) ||
			    req->pattern_count == LIST_PATTERNS_MAX)
				return false;
			req->patterns[req->pattern_count++] = list_full_pattern(cmd->s, ref, pat);
		}
		if (req->pattern_count == 0)
			return false;
	} else {
		if (!imap_commands_astring(a, &pat))
			return false;
		*empty_r = pat[0] == '\0';
		req->patterns[req->pattern_count++] = list_full_pattern(cmd->s, ref, pat);
	}
	a++;
	if (!req->lsub && a->type == IMAP_ARG_ATOM && strcasecmp(a->str, "RETURN") == 0) {
		if (a[1].type != IMAP_ARG_LIST || !list_return(req, a[1].list))
			return false;
		a += 2;
	}
	return a->type == IMAP_ARG_EOL;
}

/* A LIST being answered in steps (imap_session_run): many mailboxes, each maybe with a
 * STATUS (RFC 5819), are more than one loop turn should write. */
struct list_op {
	struct imap_session *s;
	int list_r;                /* store_mailbox_list() */
	int shared_r;              /* store_acl_shared() */
	char *user;                /* the session's address, lower-case */
	size_t stat_from, stat_to; /* names of this pass whose STATUS the read fills */
	struct list_req req;
	struct list_names n;
	int pass; /* 0: INBOX, 1: the others in octet order */
	size_t i; /* next name of this pass */
	char *tag, *name;
};

/* Names answered per step at most (each may cost a STATUS query). */
#define LIST_STEP_NAMES 256

static void list_op_free(void *op)
{
	struct list_op *o = op;
	free(o->n.v);
	arena_free(&o->n.arena);
	free(o->tag);
	free(o->name);
	free(o->user);
	free(o);
}

static bool list_answered(const struct list_op *o, const struct list_name *e)
{
	return (strcmp(e->name, "INBOX") == 0) == (o->pass == 0) && e->matched &&
	       (e->selected || e->childinfo);
}

/* LIST-STATUS: the stats of the names of this pass from o->i on, up to the next
 * LIST_STEP_NAMES answered ones, in one read (imap_session_read). */
static void list_status_read(void *ctx)
{
	struct list_op *o = ctx;
	for (size_t i = o->stat_from; i < o->stat_to; i++) {
		struct list_name *e = &o->n.v[i];
		if (!list_answered(o, e) || !e->exists || e->stat_read)
			continue;
		/* A shared mailbox's STATUS needs the r right (RFC 4314 §4). */
		if (e->owner != 0 && (e->rights & STORE_ACL_READ) == 0)
			e->stat_r = 0;
		else
			e->stat_r = store_mailbox_stats(o->s->server->store,
			                                e->owner != 0 ? e->owner : o->s->account_id,
			                                e->owner != 0 ? e->store_name : e->name, &e->st);
		e->stat_read = true;
	}
}

static void list_status_done(struct imap_session *s, void *ctx)
{
	(void)s;
	(void)ctx; /* the step goes on (or the session ends and frees the op) */
}

/* Before name e is sent: its STATUS (with the next ones') must have been read. false: a
 * read is out (the step waits). */
static bool list_status_ready(struct imap_session *s, struct list_op *o, const struct list_name *e)
{
	if (o->req.ret_status == 0 || !e->exists || e->stat_read)
		return true;
	o->stat_from = o->i;
	size_t answered = 0, i = o->i;
	for (; i < o->n.count && answered < LIST_STEP_NAMES; i++)
		answered += list_answered(o, &o->n.v[i]);
	o->stat_to = i;
	return imap_session_read(s, list_status_read, list_status_done, o);
}

/* INBOX first, as clients are used to; then octet order. */
static enum imap_step list_step(struct imap_session *s, void *op)
{
	struct list_op *o = op;
	unsigned sent = 0;
	for (; o->pass < 2; o->pass++, o->i = 0) {
		for (; o->i < o->n.count; o->i++) {
			const struct list_name *e = &o->n.v[o->i];
			if (!list_answered(o, e))
				continue;
			if (conn_output_full(s->conn) || sent == LIST_STEP_NAMES)
				return IMAP_STEP_MORE;
			if (!list_status_ready(s, o, e))
				return IMAP_STEP_WAIT;
			list_send(s, &o->req, e);
			sent++;
		}
	}
	imap_tagged(s, o->tag, "OK", "%s completed", o->name);
	return IMAP_STEP_DONE;
}

static void list_read(void *ctx)
{
	struct list_op *o = ctx;
	o->list_r = store_mailbox_list(o->s->server->store, o->s->account_id, list_names_cb, &o->n);
	o->shared_r = o->list_r < 0 ? 0
	                            : store_acl_shared(o->s->server->store, o->s->account_id, o->user,
	                                               list_shared_cb, &o->n);
}

static void list_read_done(struct imap_session *s, void *ctx)
{
	struct list_op *o = ctx;
	if (s->closed) {
		list_op_free(o);
		return;
	}
	if (o->list_r < 0 || o->shared_r < 0) {
		imap_tagged(s, o->tag, "NO", "[UNAVAILABLE] Cannot list mailboxes");
		list_op_free(o);
		return;
	}
	struct list_names *n = &o->n;
	struct list_req *req = &o->req;
	list_names_merge(n);
	for (size_t i = 0; i < n->count; i++) {
		n->v[i].matched = list_matches_any(req, n->v[i].name);
		n->v[i].selected = list_selected(req, &n->v[i]);
	}
	if (req->exhausted) {
		imap_tagged(s, o->tag, "NO",
		            "[LIMIT] Patterns too complex for this many mailboxes");
		list_op_free(o);
		return;
	}
	if (req->lsub || req->sel_recursive)
		list_childinfo(n);
	req->pattern_count = 0;
	imap_session_run(s, list_step, list_op_free, o);
}

void cmd_list(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct list_req req = {.lsub = strcmp(cmd->name, "LSUB") == 0, .budget = LIST_MATCH_BUDGET};
	bool empty;
	if (!list_parse(cmd, &req, &empty)) {
		imap_tagged(s, cmd->tag, "BAD",
		            req.lsub ? "Syntax: LSUB reference pattern"
		                     : "Syntax: LIST [(options)] reference pattern|(patterns) "
		                       "[RETURN (options)]");
		return;
	}
	if (empty) {
		/* RFC 9051 §6.3.9: the delimiter and the root of the reference (one namespace,
		 * root ""). */
		imap_send(s, "* %s (\\Noselect) \"/\" \"\"", req.lsub ? "LSUB" : "LIST");
		imap_tagged(s, cmd->tag, "OK", "%s completed", cmd->name);
		return;
	}
	struct list_op *o = xcalloc(1, sizeof(*o));
	o->s = s;
	o->n.arena = arena_new(4096); /* the names outlive the command's arena */
	/* So do the patterns, matched after the read */
	for (size_t i = 0; i < req.pattern_count; i++)
		if (req.patterns[i] != NULL)
			req.patterns[i] = arena_strdup(o->n.arena, req.patterns[i]);
	o->req = req;
	o->tag = xstrdup(cmd->tag);
	o->name = xstrdup(cmd->name);
	o->user = xstrdup(imap_acl_user(s));
	(void)imap_session_read(s, list_read, list_read_done, o);
}
