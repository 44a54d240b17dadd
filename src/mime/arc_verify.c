/* ARC verification (see arc_verify.h). The sets are found by their i= tags; the newest
 * ARC-Message-Signature is a DKIM signature checked by mime/dkim_verify; each ARC-Seal signs,
 * with relaxed header canonicalisation, every ARC field of its own and the older instances
 * in the order AAR, AMS, AS per instance, its own b= emptied (RFC 8617 §5.1.1). */
#include "mime/arc_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include "mime/dkim_canon.h"
#include "mime/dkim_hash.h"
#include "mime/dkim_verify.h"
#include "core/banned.h"

#define ARC_FIELDS_MAX 1000

enum arc_kind { ARC_AAR, ARC_AMS, ARC_AS, ARC_KINDS };

static const char *const arc_names[ARC_KINDS] = {"ARC-Authentication-Results",
                                                 "ARC-Message-Signature", "ARC-Seal"};

/* One ARC-Seal. */
struct arc_seal {
	char *d, *s, *key_name;
	bool ed25519;
	unsigned char b[DKIM_SIG_MAX];
	size_t b_len;
	size_t b_eq, b_end; /* b='s value within the field */
};

struct arc_set {
	size_t field[ARC_KINDS]; /* index into fields, SIZE_MAX when absent */
	struct arc_seal seal;
};

struct arc_verify {
	const unsigned char *msg;
	unsigned char *copy;
	size_t len;
	int64_t now;
	struct arena *arena;
	struct dkim_field *fields;
	size_t nfields;
	struct arc_set sets[ARC_INSTANCES_MAX + 1]; /* by instance, 1..n */
	unsigned n;
	struct dkim_verify *ams; /* the newest AMS */
	unsigned sealed;         /* seals checked so far, from the newest down */
	struct dkim_key_answers keys;
	const char *need;
	bool done;
	enum arc_result result;
	const char *problem;
};

static int arc_fail(struct arc_verify *v, const char *why)
{
	v->done = true;
	v->result = ARC_RESULT_FAIL;
	v->problem = why;
	return -1;
}

/* The value of field f (after the colon, without the final line end) as offsets. */
static void arc_field_value(const struct arc_verify *v, const struct dkim_field *f, size_t *start_r,
                            size_t *end_r)
{
	const unsigned char *s = v->msg + f->start;
	const unsigned char *colon = memchr(s, ':', f->len);
	size_t start = colon != NULL ? (size_t)(colon - s) + 1 : f->len, end = f->len;
	while (end > start && (s[end - 1] == '\n' || s[end - 1] == '\r'))
		end--;
	*start_r = start;
	*end_r = end;
}

/* The i= of an ARC field: a tag of the AMS and AS tag lists, the first element of the AAR
 * ("i=N; authserv-id ..."). 0 when it has none or it is out of range. */
static unsigned arc_instance(const struct arc_verify *v, const struct dkim_field *f,
                             enum arc_kind kind)
{
	size_t start, end;
	arc_field_value(v, f, &start, &end);
	const char *s = (const char *)v->msg + f->start;
	if (kind == ARC_AAR) {
		const char *semi = memchr(s + start, ';', end - start);
		if (semi == NULL)
			return 0;
		end = (size_t)(semi - s);
	}
	struct dkim_tag tags[DKIM_TAGS_MAX];
	int nt = dkim_tags_parse(s + start, end - start, tags, DKIM_TAGS_MAX);
	const struct dkim_tag *i = nt > 0 ? dkim_tag_find(s + start, tags, nt, "i") : NULL;
	if (i == NULL || i->value_len == 0 || i->value_len > 2)
		return 0;
	char *val = dkim_tag_dup(s + start, i);
	uint64_t n = 0;
	int bad = dkim_tag_number(val, &n);
	free(val);
	return bad || n < 1 || n > ARC_INSTANCES_MAX ? 0 : (unsigned)n;
}

/* Sort the ARC fields into sets: each instance 1..n exactly once of each kind. */
static int arc_collect(struct arc_verify *v)
{
	for (unsigned i = 0; i <= ARC_INSTANCES_MAX; i++)
		for (int k = 0; k < ARC_KINDS; k++)
			v->sets[i].field[k] = SIZE_MAX;
	bool any = false;
	for (size_t f = 0; f < v->nfields; f++) {
		for (int k = 0; k < ARC_KINDS; k++) {
			if (!dkim_canon_field_is(v->msg, &v->fields[f], arc_names[k]))
				continue;
			any = true;
			unsigned i = arc_instance(v, &v->fields[f], (enum arc_kind)k);
			if (i == 0)
				return arc_fail(v, "an ARC field has no valid i=");
			if (v->sets[i].field[k] != SIZE_MAX)
				return arc_fail(v, "an ARC instance is repeated");
			v->sets[i].field[k] = f;
			if (i > v->n)
				v->n = i;
		}
	}
	if (!any) {
		v->done = true;
		v->result = ARC_RESULT_NONE;
		return -1;
	}
	for (unsigned i = 1; i <= v->n; i++)
		for (int k = 0; k < ARC_KINDS; k++)
			if (v->sets[i].field[k] == SIZE_MAX)
				return arc_fail(v, "an ARC set is incomplete");
	return 0;
}

/* Parse the ARC-Seal of instance i and check its cv= against its place in the chain. */
static int arc_seal_parse(struct arc_verify *v, unsigned i)
{
	struct arc_seal *seal = &v->sets[i].seal;
	const struct dkim_field *f = &v->fields[v->sets[i].field[ARC_AS]];
	const char *s = (const char *)v->msg + f->start;
	size_t start, end;
	arc_field_value(v, f, &start, &end);
	struct dkim_tag tags[DKIM_TAGS_MAX];
	int n = dkim_tags_parse(s + start, end - start, tags, DKIM_TAGS_MAX);
	if (n < 0)
		return arc_fail(v, "syntax error in an ARC-Seal");
	const struct dkim_tag *a = dkim_tag_find(s + start, tags, n, "a"),
	                      *b = dkim_tag_find(s + start, tags, n, "b"),
	                      *cv = dkim_tag_find(s + start, tags, n, "cv"),
	                      *d = dkim_tag_find(s + start, tags, n, "d"),
	                      *sel = dkim_tag_find(s + start, tags, n, "s");
	if (a == NULL || b == NULL || cv == NULL || d == NULL || sel == NULL)
		return arc_fail(v, "an ARC-Seal lacks a required tag");
	if (dkim_tag_find(s + start, tags, n, "h") != NULL)
		return arc_fail(v, "an ARC-Seal has h="); /* RFC 8617 §4.1.3 */
	const char *want = i == 1 ? "none" : "pass";
	if (cv->value_len != strlen(want) ||
	    strncasecmp(s + start + cv->value, want, cv->value_len))
		return arc_fail(v, i == v->n && cv->value_len == 4 &&
		                           strncasecmp(s + start + cv->value, "fail", 4) == 0
		                       ? "the newest ARC-Seal says cv=fail"
		                       : "an ARC-Seal's cv= does not fit its instance");
	char *alg = dkim_tag_dup(s + start, a);
	seal->ed25519 = strcasecmp(alg, "ed25519-sha256") == 0;
	bool alg_ok = seal->ed25519 || strcasecmp(alg, "rsa-sha256") == 0;
	free(alg);
	if (!alg_ok)
		return arc_fail(v, "an ARC-Seal has an unknown algorithm");
	ssize_t nb = dkim_tag_base64(s + start, b, seal->b, sizeof(seal->b));
	if (nb <= 0)
		return arc_fail(v, "an ARC-Seal has a bad b=");
	seal->b_len = (size_t)nb;
	seal->b_eq = start + b->eq;
	seal->b_end = start + b->end;
	seal->d = dkim_tag_dup(s + start, d);
	seal->s = dkim_tag_dup(s + start, sel);
	size_t kn = strlen(seal->s) + strlen(seal->d) + 13;
	seal->key_name = xmalloc(kn);
	snprintf(seal->key_name, kn, "%s._domainkey.%s", seal->s, seal->d);
	return 0;
}

struct arc_verify *arc_verify_new(const unsigned char *msg, size_t len, int64_t now)
{
	struct arc_verify *v = xcalloc(1, sizeof(*v));
	v->now = now;
	v->arena = arena_new(16384);
	v->msg = dkim_canon_message(msg, len, &v->copy, &v->len);
	size_t body;
	v->nfields = dkim_canon_fields(v->arena, v->msg, v->len, ARC_FIELDS_MAX, &v->fields, &body);
	if (arc_collect(v) < 0)
		return v;
	for (unsigned i = v->n; i >= 1; i--)
		if (arc_seal_parse(v, i) < 0)
			return v;
	v->ams = dkim_verify_new_ams(v->msg, v->len, v->n, now);
	return v;
}

void arc_verify_free(struct arc_verify **vp)
{
	struct arc_verify *v = *vp;
	if (v == NULL)
		return;
	for (unsigned i = 0; i <= ARC_INSTANCES_MAX; i++) {
		free(v->sets[i].seal.d);
		free(v->sets[i].seal.s);
		free(v->sets[i].seal.key_name);
	}
	dkim_verify_free(&v->ams);
	dkim_key_answers_free(&v->keys);
	free(v->copy);
	arena_free(&v->arena);
	free(v);
	*vp = NULL;
}

/* Feed field f canonicalised (relaxed) into md; for the seal being checked, without its b=
 * value and final line end. */
static int arc_hash_field(const struct arc_verify *v, EVP_MD_CTX *md, const struct dkim_field *f,
                          const struct arc_seal *emptied)
{
	const unsigned char *fs = v->msg + f->start;
	struct buf field, canon;
	buf_init(&field, f->len + 1);
	buf_init(&canon, 2 * f->len + 16);
	int ok;
	if (emptied != NULL)
		ok = buf_append(&field, fs, emptied->b_eq) == 0 &&
		     buf_append(&field, fs + emptied->b_end, f->len - emptied->b_end) == 0 &&
		     dkim_canon_header(DKIM_CANON_RELAXED, (const unsigned char *)field.data,
		                       field.len, false, &canon) == 0;
	else
		ok = dkim_canon_header(DKIM_CANON_RELAXED, fs, f->len, true, &canon) == 0;
	ok = ok && EVP_DigestUpdate(md, canon.data, canon.len) == 1;
	buf_free(&field);
	buf_free(&canon);
	return ok ? 0 : -1;
}

/* The digest the ARC-Seal of instance i signs. */
static int arc_seal_digest(const struct arc_verify *v, unsigned i,
                           unsigned char digest[DKIM_HASH_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (unsigned j = 1; j <= i && ok; j++)
		for (int k = 0; k < ARC_KINDS && ok; k++)
			ok = arc_hash_field(v, md, &v->fields[v->sets[j].field[k]],
			                    j == i && k == ARC_AS ? &v->sets[j].seal : NULL) == 0;
	unsigned int dlen = 0;
	ok = ok && EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == DKIM_HASH_LEN;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/* The newest AMS must verify (§5.2 step 5). 1 done, 0 a key is needed, -1 failed. */
static int arc_check_ams(struct arc_verify *v)
{
	if (dkim_verify_run(v->ams) == 0) {
		v->need = dkim_verify_need(v->ams);
		return 0;
	}
	const struct dkim_signature_result *r = dkim_verify_result(v->ams, 0);
	if (r == NULL)
		return arc_fail(v, "the newest ARC-Message-Signature cannot be read");
	if (r->result != DKIM_RESULT_PASS)
		return arc_fail(v, r->problem != NULL ? r->problem
		                                      : "the newest ARC-Message-Signature failed");
	return 1;
}

int arc_verify_run(struct arc_verify *v)
{
	if (v->done)
		return 1;
	int r = arc_check_ams(v);
	if (r <= 0)
		return r < 0 ? 1 : 0;
	/* Every seal, newest first (§5.2 step 7). */
	while (v->sealed < v->n) {
		unsigned i = v->n - v->sealed;
		const struct arc_seal *seal = &v->sets[i].seal;
		const struct dkim_key_answer *a = dkim_key_answers_find(&v->keys, seal->key_name);
		if (a == NULL) {
			v->need = seal->key_name;
			return 0;
		}
		struct dkim_key key;
		bool tempfail;
		const char *problem;
		unsigned char digest[DKIM_HASH_LEN];
		bool ok =
		    dkim_key_from_answer(NULL, a, seal->ed25519, &key, &tempfail, &problem) == 0;
		if (!ok)
			arc_fail(v, problem);
		else if (arc_seal_digest(v, i, digest) < 0)
			arc_fail(v, "hashing failed");
		else if (!dkim_signature_ok(key.pkey, seal->ed25519, seal->b, seal->b_len, digest))
			arc_fail(v, "an ARC-Seal did not verify");
		EVP_PKEY_free(key.pkey);
		if (v->done)
			return 1;
		v->sealed++;
	}
	v->done = true;
	v->result = ARC_RESULT_PASS;
	return 1;
}

const char *arc_verify_need(const struct arc_verify *v)
{
	return v->need;
}

void arc_verify_answer(struct arc_verify *v, const char *name, enum dkim_dns_status status,
                       const char *const *texts, const size_t *lens, size_t n)
{
	dkim_key_answers_add(&v->keys, name, status, texts, lens, n);
	if (v->ams != NULL)
		dkim_verify_answer(v->ams, name, status, texts, lens, n);
}

enum arc_result arc_verify_result(const struct arc_verify *v, unsigned *instances_r,
                                  const char **problem_r, const char **sealer_r)
{
	*instances_r = v->n;
	*problem_r = v->result == ARC_RESULT_FAIL ? v->problem : NULL;
	*sealer_r = v->n > 0 && v->sets[v->n].seal.d != NULL ? v->sets[v->n].seal.d : "";
	return v->result;
}

const char *arc_result_name(enum arc_result result)
{
	static const char *const names[] = {"none", "pass", "fail"};
	return (unsigned)result < 3 ? names[result] : "fail";
}
