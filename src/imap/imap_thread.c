/* IMAP THREAD's pure core: ORDEREDSUBJECT and REFERENCES as RFC 5256 §2.2 gives them
 * (steps 1A-1C, 2, 4, 5, 6; step 3 is freeing the id table with the arena), and the
 * nested-list answer. Loops, self-references, duplicate and missing Message-IDs are
 * handled where the steps say: a link that would make a loop is not made, a duplicate id
 * is used only by its first message. Every walk over the tree is iterative. */
#include "imap/imap_thread.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "imap/imap_sort.h"
#include "mime/mime.h"
#include "core/banned.h"

int imap_thread_algo_parse(const char *name, enum imap_thread_algo *algo_r)
{
	if (strcasecmp(name, "ORDEREDSUBJECT") == 0)
		*algo_r = IMAP_THREAD_ORDEREDSUBJECT;
	else if (strcasecmp(name, "REFERENCES") == 0)
		*algo_r = IMAP_THREAD_REFERENCES;
	else
		return -1;
	return 0;
}

/* ---- header keys ---- */

/* The next "<id>" of s[*p..len) holding an '@' between other octets, no white space and at
 * most IMAP_THREAD_ID_MAX octets: its text without <> in arena, or NULL when none is left. */
static const char *thread_next_id(struct arena *a, const char *s, size_t len, size_t *p)
{
	while (*p < len) {
		const char *lt = memchr(s + *p, '<', len - *p);
		if (lt == NULL)
			break;
		size_t b = (size_t)(lt - s) + 1, e = b;
		bool at = false, bad = false;
		while (e < len && s[e] != '>' && s[e] != '<') {
			at |= s[e] == '@' && e > b && e + 1 < len && s[e + 1] != '>';
			bad |= s[e] == ' ' || s[e] == '\t' || s[e] == '\0';
			e++;
		}
		*p = e < len && s[e] == '>' ? e + 1 : e;
		if (e < len && s[e] == '>' && at && !bad && e > b && e - b <= IMAP_THREAD_ID_MAX)
			return arena_strndup(a, s + b, e - b);
	}
	*p = len;
	return NULL;
}

/* All ids of a References body, the last IMAP_THREAD_REFS_MAX kept. */
static void thread_refs(struct arena *a, const char *s, size_t len, struct imap_thread_msg *m)
{
	const char **v = arena_alloc(a, IMAP_THREAD_REFS_MAX * sizeof(*v));
	size_t n = 0, total = 0, p = 0;
	const char *id;
	while ((id = thread_next_id(a, s, len, &p)) != NULL) {
		v[n % IMAP_THREAD_REFS_MAX] = id;
		n++;
		total++;
	}
	if (total > IMAP_THREAD_REFS_MAX) { /* a ring: rotate the oldest kept to the front */
		const char **w = arena_alloc(a, IMAP_THREAD_REFS_MAX * sizeof(*w));
		for (size_t i = 0; i < IMAP_THREAD_REFS_MAX; i++)
			w[i] = v[(n + i) % IMAP_THREAD_REFS_MAX];
		v = w;
		total = IMAP_THREAD_REFS_MAX;
	}
	m->refs = v;
	m->ref_count = total;
}

void imap_thread_msg_headers(struct arena *arena, const unsigned char *hdr, size_t len,
                             struct imap_thread_msg *m)
{
	bool subject = false, date = false, refs = false, msgid = false;
	const char *irt = NULL;
	m->date = m->arrival;
	m->subject = "";
	m->reply = false;
	m->message_id = NULL;
	m->refs = NULL;
	m->ref_count = 0;
	struct mime_field_iter it;
	struct mime_field f;
	mime_field_iter_init(&it, hdr, 0, len);
	while (mime_field_iter_next(&it, &f)) {
		size_t vl, p = 0;
		if (!f.has_colon)
			continue;
		if (!subject && mime_field_is(hdr, &f, "Subject")) {
			subject = true;
			char *v = mime_field_unfolded(arena, hdr, &f, &vl);
			char *base = imap_sort_base_subject(arena, v, vl, &m->reply);
			m->subject = imap_sort_collate(arena, base, strlen(base));
		} else if (!date && mime_field_is(hdr, &f, "Date")) {
			date = true;
			char *v = mime_field_unfolded(arena, hdr, &f, &vl);
			if (!imap_sort_parse_date(v, vl, &m->date))
				m->date = m->arrival;
		} else if (!msgid && mime_field_is(hdr, &f, "Message-ID")) {
			msgid = true;
			char *v = mime_field_unfolded(arena, hdr, &f, &vl);
			m->message_id = thread_next_id(arena, v, vl, &p);
		} else if (!refs && mime_field_is(hdr, &f, "References")) {
			char *v = mime_field_unfolded(arena, hdr, &f, &vl);
			thread_refs(arena, v, vl, m);
			refs = m->ref_count > 0; /* one without a valid id does not count */
		} else if (irt == NULL && mime_field_is(hdr, &f, "In-Reply-To")) {
			char *v = mime_field_unfolded(arena, hdr, &f, &vl);
			irt = thread_next_id(arena, v, vl, &p);
		}
	}
	/* RFC 5256 §2.2 step 1A: no valid References: the first valid id of In-Reply-To */
	if (m->ref_count == 0 && irt != NULL) {
		const char **v = arena_alloc(arena, sizeof(*v));
		v[0] = irt;
		m->refs = v;
		m->ref_count = 1;
	}
}

/* ---- a string → node table (open addressing, in the arena) ---- */

struct thread_table {
	const char **keys;
	struct imap_thread_node **nodes;
	size_t mask;
};

static void thread_table_init(struct arena *a, struct thread_table *t, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n + 2)
		cap *= 2;
	t->keys = arena_alloc(a, cap * sizeof(*t->keys));
	t->nodes = arena_alloc(a, cap * sizeof(*t->nodes));
	memset(t->keys, 0, cap * sizeof(*t->keys));
	t->mask = cap - 1;
}

/* The slot of key: where it is, or the empty one where it goes. */
static size_t thread_table_slot(const struct thread_table *t, const char *key)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ull;
	size_t i = (size_t)h & t->mask;
	while (t->keys[i] != NULL && strcmp(t->keys[i], key) != 0)
		i = (i + 1) & t->mask;
	return i;
}

static struct imap_thread_node *thread_table_get(const struct thread_table *t, const char *key)
{
	size_t i = thread_table_slot(t, key);
	return t->keys[i] != NULL ? t->nodes[i] : NULL;
}

/* Set key's node (the table was sized for every key put in it). */
static void thread_table_put(struct thread_table *t, const char *key, struct imap_thread_node *n)
{
	size_t i = thread_table_slot(t, key);
	t->keys[i] = key;
	t->nodes[i] = n;
}

/* ---- the tree ---- */

struct thread_ctx {
	struct arena *arena;
	struct imap_thread_node **all; /* every node made, for step 2 */
	size_t count, cap;
};

static struct imap_thread_node *thread_node_new(struct thread_ctx *c,
                                                const struct imap_thread_msg *msg)
{
	struct imap_thread_node *n = arena_alloc(c->arena, sizeof(*n));
	memset(n, 0, sizeof(*n));
	n->msg = msg;
	if (c->count < c->cap)
		c->all[c->count++] = n;
	return n;
}

static void thread_link(struct imap_thread_node *parent, struct imap_thread_node *child)
{
	child->parent = parent;
	child->next = parent->child;
	parent->child = child;
}

static void thread_unlink(struct imap_thread_node *child)
{
	struct imap_thread_node *p = child->parent;
	if (p == NULL)
		return;
	for (struct imap_thread_node **pp = &p->child; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == child) {
			*pp = child->next;
			break;
		}
	}
	child->parent = child->next = NULL;
}

/* Is a the node d or one of its ancestors? (Would linking d as a's parent make a loop?) */
static bool thread_is_ancestor(const struct imap_thread_node *a, const struct imap_thread_node *d)
{
	if (a->child == NULL) /* a leaf is nobody's ancestor: no walk (long chains stay linear) */
		return a == d;
	for (; d != NULL; d = d->parent)
		if (d == a)
			return true;
	return false;
}

/* Nodes of the tree under root (root included) with every child before its parent:
 * malloc'd, *n_r entries. */
static struct imap_thread_node **thread_postorder(struct imap_thread_node *root, size_t total,
                                                  size_t *n_r)
{
	struct imap_thread_node **out = xmalloc((total + 1) * sizeof(*out));
	struct imap_thread_node **stack = xmalloc((total + 1) * sizeof(*stack));
	size_t n = 0, sp = 0;
	stack[sp++] = root;
	while (sp > 0) {
		struct imap_thread_node *x = stack[--sp];
		if (n > total)
			break; /* cannot happen: the tree holds each node once */
		out[n++] = x;
		for (struct imap_thread_node *c = x->child; c != NULL; c = c->next)
			stack[sp++] = c;
	}
	free(stack);
	for (size_t i = 0; i < n / 2; i++) { /* pre-order reversed: children first */
		struct imap_thread_node *t = out[i];
		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	*n_r = n;
	return out;
}

static int thread_cmp_node(const void *x, const void *y)
{
	const struct imap_thread_node *a = *(struct imap_thread_node *const *)x;
	const struct imap_thread_node *b = *(struct imap_thread_node *const *)y;
	if (a->sort_date != b->sort_date)
		return a->sort_date < b->sort_date ? -1 : 1;
	return a->sort_seq < b->sort_seq ? -1 : a->sort_seq > b->sort_seq;
}

/* Step 6: every node's children by sent date (a dummy by its first child's), ties by
 * sequence number. */
static void thread_sort(struct imap_thread_node *root, size_t total)
{
	size_t n;
	struct imap_thread_node **order = thread_postorder(root, total, &n);
	struct imap_thread_node **tmp = xmalloc((n + 1) * sizeof(*tmp));
	for (size_t i = 0; i < n; i++) {
		struct imap_thread_node *x = order[i];
		size_t k = 0;
		for (struct imap_thread_node *c = x->child; c != NULL; c = c->next)
			tmp[k++] = c;
		qsort(tmp, k, sizeof(*tmp), thread_cmp_node);
		x->child = NULL;
		for (size_t j = k; j-- > 0;) {
			tmp[j]->next = x->child;
			x->child = tmp[j];
		}
		if (x->msg != NULL) {
			x->sort_date = x->msg->date;
			x->sort_seq = x->msg->seq;
		} else if (x->child != NULL) {
			x->sort_date = x->child->sort_date;
			x->sort_seq = x->child->sort_seq;
		}
	}
	free(tmp);
	free(order);
}

/* ---- REFERENCES ---- */

/* Step 1A: link the references in order (each the parent of the next) where the child has
 * no parent yet and no loop follows; their nodes into refs_r. */
static void thread_link_refs(struct thread_ctx *c, struct thread_table *ids,
                             const struct imap_thread_msg *m, struct imap_thread_node **refs_r)
{
	for (size_t i = 0; i < m->ref_count; i++) {
		struct imap_thread_node *n = thread_table_get(ids, m->refs[i]);
		if (n == NULL) {
			n = thread_node_new(c, NULL);
			thread_table_put(ids, m->refs[i], n);
		}
		refs_r[i] = n;
		if (i > 0 && n->parent == NULL && !thread_is_ancestor(n, refs_r[i - 1]))
			thread_link(refs_r[i - 1], n);
	}
}

/* Step 1 for one message: 1A, then its own node (1B: a missing id or one a message
 * already holds gives a node of its own), then its parent (1C: the last reference, in
 * place of any parent 1A gave, unless that makes a loop; none without references). */
static void thread_add_message(struct thread_ctx *c, struct thread_table *ids,
                               const struct imap_thread_msg *m)
{
	struct imap_thread_node *refs[IMAP_THREAD_REFS_MAX];
	size_t nrefs = m->ref_count < IMAP_THREAD_REFS_MAX ? m->ref_count : IMAP_THREAD_REFS_MAX;
	struct imap_thread_msg view = *m;
	view.ref_count = nrefs;
	thread_link_refs(c, ids, &view, refs);
	struct imap_thread_node *self = NULL;
	if (m->message_id != NULL) {
		self = thread_table_get(ids, m->message_id);
		if (self == NULL) {
			self = thread_node_new(c, m);
			thread_table_put(ids, m->message_id, self);
		} else if (self->msg == NULL) {
			self->msg = m;
		} else {
			self = NULL; /* a duplicate: treated as a unique id */
		}
	}
	if (self == NULL)
		self = thread_node_new(c, m);
	thread_unlink(self);
	if (nrefs > 0 && !thread_is_ancestor(self, refs[nrefs - 1]))
		thread_link(refs[nrefs - 1], self);
}

/* Step 4 on the tree under root (the root set as its children): dummies without children
 * go; a dummy's children take its place, except a dummy that is a child of the root with
 * more than one child. Post-order, so what moves up was pruned already. */
static void thread_prune(struct imap_thread_node *root, size_t total)
{
	size_t n;
	struct imap_thread_node **order = thread_postorder(root, total, &n);
	for (size_t i = 0; i < n; i++) {
		struct imap_thread_node *x = order[i];
		struct imap_thread_node **pp = &x->child;
		while (*pp != NULL) {
			struct imap_thread_node *d = *pp;
			if (d->msg != NULL) {
				pp = &d->next;
				continue;
			}
			if (d->child == NULL) {
				*pp = d->next; /* 4A */
				continue;
			}
			if (x == root && d->child->next != NULL) {
				pp = &d->next; /* kept: promoting would make them roots */
				continue;
			}
			struct imap_thread_node *last = d->child; /* 4B: children in its place */
			for (struct imap_thread_node *k = d->child; k != NULL; k = k->next) {
				k->parent = x;
				last = k;
			}
			last->next = d->next;
			*pp = d->child;
			pp = &last->next;
		}
	}
	free(order);
}

static const char *thread_subject(const struct imap_thread_node *n)
{
	const struct imap_thread_node *m = n->msg != NULL ? n : n->child;
	return m != NULL && m->msg != NULL ? m->msg->subject : "";
}

/* Step 5C(v): merge root child x into t, the subject table's node for its subject. */
static void thread_merge(struct thread_ctx *c, struct imap_thread_node *root,
                         struct thread_table *subjects, const char *subj,
                         struct imap_thread_node *t, struct imap_thread_node *x)
{
	if (t->msg == NULL && x->msg == NULL) {
		thread_unlink(x);
		while (x->child != NULL) {
			struct imap_thread_node *k = x->child;
			thread_unlink(k);
			thread_link(t, k);
		}
	} else if (t->msg == NULL || (x->msg != NULL && x->msg->reply && !t->msg->reply)) {
		thread_unlink(x);
		thread_link(t, x);
	} else {
		struct imap_thread_node *d = thread_node_new(c, NULL);
		thread_unlink(t);
		thread_unlink(x);
		thread_link(d, t);
		thread_link(d, x);
		thread_link(root, d);
		thread_table_put(subjects, subj, d);
	}
}

/* Step 5: threads of the root set with the same base subject gathered. */
static void thread_subjects(struct thread_ctx *c, struct imap_thread_node *root, size_t roots)
{
	struct thread_table subjects;
	thread_table_init(c->arena, &subjects, roots);
	struct imap_thread_node **v = xmalloc((roots + 1) * sizeof(*v));
	size_t n = 0;
	for (struct imap_thread_node *x = root->child; x != NULL && n < roots; x = x->next)
		v[n++] = x;
	for (size_t i = 0; i < n; i++) { /* 5B */
		const char *subj = thread_subject(v[i]);
		if (subj[0] == '\0')
			continue;
		struct imap_thread_node *t = thread_table_get(&subjects, subj);
		if (t == NULL ||
		    (t->msg != NULL && (v[i]->msg == NULL || (t->msg->reply && !v[i]->msg->reply))))
			thread_table_put(&subjects, subj, v[i]);
	}
	for (size_t i = 0; i < n; i++) { /* 5C */
		const char *subj = thread_subject(v[i]);
		if (subj[0] == '\0')
			continue;
		struct imap_thread_node *t = thread_table_get(&subjects, subj);
		if (t != v[i])
			thread_merge(c, root, &subjects, subj, t, v[i]);
	}
	free(v);
}

static struct imap_thread_node *thread_references(struct thread_ctx *c,
                                                  const struct imap_thread_msg **msgs, size_t n)
{
	size_t ids_total = 0;
	for (size_t i = 0; i < n; i++)
		ids_total += 1 + (msgs[i]->ref_count < IMAP_THREAD_REFS_MAX ? msgs[i]->ref_count
		                                                            : IMAP_THREAD_REFS_MAX);
	struct thread_table ids;
	thread_table_init(c->arena, &ids, ids_total);
	c->cap = 2 * ids_total + n + 2; /* ids, duplicates, step 5's dummies */
	c->all = xmalloc(c->cap * sizeof(*c->all));
	struct imap_thread_node *root = arena_alloc(c->arena, sizeof(*root));
	memset(root, 0, sizeof(*root));
	for (size_t i = 0; i < n; i++)
		thread_add_message(c, &ids, msgs[i]);
	size_t made = c->count, roots = 0;
	for (size_t i = 0; i < made; i++) /* step 2: the root set */
		if (c->all[i]->parent == NULL) {
			thread_link(root, c->all[i]);
			roots++;
		}
	thread_prune(root, made);
	thread_sort(root, made); /* so that a dummy's "first child" (5B(i)) is its earliest */
	thread_subjects(c, root, roots);
	thread_sort(root, c->count);
	free(c->all);
	return root;
}

/* ---- ORDEREDSUBJECT ---- */

static int thread_cmp_subject(const void *x, const void *y)
{
	const struct imap_thread_msg *a = *(const struct imap_thread_msg *const *)x;
	const struct imap_thread_msg *b = *(const struct imap_thread_msg *const *)y;
	int r = strcmp(a->subject, b->subject);
	if (r != 0)
		return r;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* RFC 5256 §2.2 ORDEREDSUBJECT: by base subject, then sent date; each run of one subject
 * is a thread whose first message is the parent of the others; threads by the sent date
 * of their first message. */
static struct imap_thread_node *thread_ordered(struct thread_ctx *c,
                                               const struct imap_thread_msg **msgs, size_t n)
{
	qsort(msgs, n, sizeof(*msgs), thread_cmp_subject);
	c->cap = n + 1;
	c->all = xmalloc(c->cap * sizeof(*c->all));
	struct imap_thread_node *root = arena_alloc(c->arena, sizeof(*root));
	memset(root, 0, sizeof(*root));
	struct imap_thread_node *top = NULL;
	for (size_t i = 0; i < n; i++) {
		struct imap_thread_node *x = thread_node_new(c, msgs[i]);
		if (top != NULL && strcmp(top->msg->subject, msgs[i]->subject) == 0) {
			thread_link(top, x);
		} else {
			thread_link(root, x);
			top = x;
		}
	}
	thread_sort(root, c->count);
	free(c->all);
	return root;
}

static int thread_cmp_seq(const void *x, const void *y)
{
	const struct imap_thread_msg *a = *(const struct imap_thread_msg *const *)x;
	const struct imap_thread_msg *b = *(const struct imap_thread_msg *const *)y;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

struct imap_thread_node *imap_thread_build(struct arena *arena, enum imap_thread_algo algo,
                                           const struct imap_thread_msg *msgs, size_t n)
{
	if (n == 0)
		return NULL;
	const struct imap_thread_msg **v = xmalloc(n * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = &msgs[i];
	/* messages in mailbox order: the first of duplicate ids keeps it (step 1B) */
	qsort(v, n, sizeof(*v), thread_cmp_seq);
	struct thread_ctx c = {.arena = arena};
	struct imap_thread_node *root =
	    algo == IMAP_THREAD_REFERENCES ? thread_references(&c, v, n) : thread_ordered(&c, v, n);
	free(v);
	for (struct imap_thread_node *x = root->child; x != NULL; x = x->next)
		x->parent = NULL;
	return root->child;
}

/* ---- the answer ---- */

/* A number, after a SP when a number was written just before. */
static int thread_put_number(struct buf *out, uint32_t v)
{
	bool digit =
	    out->len > 0 && out->data[out->len - 1] >= '0' && out->data[out->len - 1] <= '9';
	return buf_printf(out, "%s%u", digit ? " " : "", v);
}

/* One thread: a node's number; one child follows in the same list, several each in
 * parentheses (RFC 5256 §4 thread-list). */
static int thread_format_one(const struct imap_thread_node *top, bool uid, struct buf *out,
                             const struct imap_thread_node **stack)
{
	size_t sp = 0;
	int r = buf_puts(out, "(");
	const struct imap_thread_node *x = top;
	while (r == 0) {
		if (x->msg != NULL)
			r |= thread_put_number(out, uid ? x->msg->uid : x->msg->seq);
		if (x->child != NULL && x->child->next == NULL) {
			x = x->child;
			continue;
		}
		if (x->child != NULL) {
			bool digit = out->len > 0 && out->data[out->len - 1] >= '0' &&
			             out->data[out->len - 1] <= '9';
			r |= buf_puts(out, digit ? " (" : "(");
			stack[sp++] = x->child->next;
			x = x->child;
			continue;
		}
		for (x = NULL; sp > 0 && x == NULL;) { /* a leaf: close groups, open the next */
			r |= buf_puts(out, ")");
			if (stack[sp - 1] != NULL) {
				x = stack[sp - 1];
				stack[sp - 1] = x->next;
				r |= buf_puts(out, "(");
			} else {
				sp--;
			}
		}
		if (x == NULL)
			break;
	}
	return r | buf_puts(out, ")");
}

int imap_thread_format(const struct imap_thread_node *roots, bool uid, struct buf *out)
{
	/* the deepest nesting is at most the number of nodes */
	size_t n = 0;
	for (const struct imap_thread_node *x = roots; x != NULL; x = x->next) {
		size_t k = 0;
		const struct imap_thread_node *y = x;
		while (y != NULL) { /* count the nodes of the thread without recursion */
			k++;
			if (y->child != NULL) {
				y = y->child;
				continue;
			}
			while (y != NULL && y->next == NULL && y != x)
				y = y->parent;
			y = (y == NULL || y == x) ? NULL : y->next;
		}
		n = k > n ? k : n;
	}
	const struct imap_thread_node **stack = xmalloc((n + 1) * sizeof(*stack));
	int r = 0;
	for (const struct imap_thread_node *x = roots; x != NULL && r == 0; x = x->next)
		r = thread_format_one(x, uid, out, stack);
	free(stack);
	return r;
}
