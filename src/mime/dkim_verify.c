/* DKIM verification (see dkim_verify.h): tag lists (RFC 6376 §3.2), the signature field
 * (§3.5), key records (§3.6.1), the hashes (§3.7, mime/dkim_hash) and the signature check
 * (§6.1.3) with RSA-SHA256 (RFC 8301: keys of 1024 bits and more; SHA-1 refused) or
 * Ed25519-SHA256 (RFC 8463). */
#include "mime/dkim_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/crlf.h"
#include "core/xmalloc.h"
#include "mime/dkim_canon.h"
#include "mime/dkim_hash.h"
#include "mime/dkim_record.h"
#include "core/banned.h"

#define DKIM_VERIFY_FIELDS_MAX 1000
#define DKIM_H_MAX 128

struct dkim_sig {
	struct dkim_signature_result r;
	bool done;
	size_t field; /* its index among the header fields */
	char *d, *s, *a, *bpref, *key_name, *i_domain;
	enum dkim_canon hc, bc;
	bool ed25519;
	uint64_t l;
	unsigned char bh[DKIM_HASH_LEN];
	unsigned char b[DKIM_SIG_MAX];
	size_t b_len;
	char *h[DKIM_H_MAX];
	size_t nh;
	size_t b_eq, b_end; /* b='s value within the field, to be emptied for the hash */
	uint64_t instance;  /* an AMS's i= */
};

struct dkim_verify {
	const unsigned char *msg;
	unsigned char *copy; /* msg with bare CR/LF made CRLF, when it had any */
	size_t len, body;
	int64_t now;
	struct arena *arena;
	struct dkim_field *fields;
	size_t nfields;
	struct dkim_sig *sigs;
	size_t nsigs;
	struct dkim_key_answers keys;
	struct dkim_key_cache *key_cache; /* or NULL */
	const char *need;
	bool ams;              /* ARC-Message-Signature fields (RFC 8617 §4.1.2) */
	uint64_t ams_instance; /* the one instance verified */
};

/* ---- the signature field (§3.5) ---- */

static int dkim_sig_error(struct dkim_sig *sig, enum dkim_result r, const char *why)
{
	sig->r.result = r;
	sig->r.problem = why;
	sig->done = true;
	return -1;
}

/* c=: "header[/body]", each simple or relaxed; absent: simple/simple. */
static int dkim_sig_canon(struct dkim_sig *sig, const char *v)
{
	sig->hc = sig->bc = DKIM_CANON_SIMPLE;
	if (v == NULL)
		return 0;
	const char *slash = strchr(v, '/');
	size_t hl = slash != NULL ? (size_t)(slash - v) : strlen(v);
	const char *b = slash != NULL ? slash + 1 : "simple";
	if (hl == 7 && strncmp(v, "relaxed", 7) == 0)
		sig->hc = DKIM_CANON_RELAXED;
	else if (!(hl == 6 && strncmp(v, "simple", 6) == 0))
		return -1;
	if (strcmp(b, "relaxed") == 0)
		sig->bc = DKIM_CANON_RELAXED;
	else if (strcmp(b, "simple") != 0)
		return -1;
	return 0;
}

/* h=: names separated by ':'; one of them From. */
static int dkim_sig_h(struct dkim_sig *sig, char *list)
{
	bool from = false;
	for (char *p = list; sig->nh < DKIM_H_MAX;) {
		char *colon = strchr(p, ':');
		if (colon != NULL)
			*colon = '\0';
		if (*p == '\0')
			return -1;
		sig->h[sig->nh++] = xstrdup(p);
		from |= strcasecmp(p, "from") == 0;
		if (colon == NULL)
			break;
		p = colon + 1;
	}
	return from ? 0 : -1;
}

/* i=: its domain must be d= or below it (§3.5). */
static int dkim_sig_identity(struct dkim_sig *sig, const char *i)
{
	const char *at = strrchr(i, '@');
	if (at == NULL)
		return -1;
	const char *dom = at + 1;
	size_t n = strlen(dom), d = strlen(sig->d);
	if (n < d || strcasecmp(dom + n - d, sig->d) != 0 || (n > d && dom[n - d - 1] != '.'))
		return -1;
	sig->i_domain = xstrdup(dom);
	return 0;
}

/* The tags every signature needs, and a=. */
static int dkim_sig_required(struct dkim_sig *sig, const char *s, const struct dkim_tag *tags,
                             int n, bool ams)
{
	const struct dkim_tag *v = dkim_tag_find(s, tags, n, "v"),
	                      *a = dkim_tag_find(s, tags, n, "a"),
	                      *b = dkim_tag_find(s, tags, n, "b"),
	                      *bh = dkim_tag_find(s, tags, n, "bh"),
	                      *d = dkim_tag_find(s, tags, n, "d"),
	                      *h = dkim_tag_find(s, tags, n, "h"),
	                      *sel = dkim_tag_find(s, tags, n, "s");
	if ((v == NULL && !ams) || a == NULL || b == NULL || bh == NULL || d == NULL || h == NULL ||
	    sel == NULL)
		return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "a required tag is missing");
	sig->d = dkim_tag_dup(s, d);
	for (char *p = sig->d; *p != '\0'; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	sig->s = dkim_tag_dup(s, sel);
	sig->a = dkim_tag_dup(s, a);
	sig->r.domain = sig->d;
	sig->r.selector = sig->s;
	sig->r.algorithm = sig->a;
	char *bc = dkim_tag_compact_dup(s, b);
	sig->bpref = xstrndup(bc, strnlen(bc, 8));
	free(bc);
	sig->r.b_prefix = sig->bpref;
	sig->b_eq = b->eq;
	sig->b_end = b->end;
	if (!ams && (v->value_len != 1 || s[v->value] != '1'))
		return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "unknown version");
	if (strcasecmp(sig->a, "rsa-sha1") == 0)
		return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "rsa-sha1 is not accepted");
	sig->ed25519 = strcasecmp(sig->a, "ed25519-sha256") == 0;
	if (!sig->ed25519 && strcasecmp(sig->a, "rsa-sha256") != 0)
		return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "unknown algorithm");
	ssize_t nb = dkim_tag_base64(s, b, sig->b, sizeof(sig->b));
	unsigned char bh_buf[64];
	ssize_t nbh = dkim_tag_base64(s, bh, bh_buf, sizeof(bh_buf));
	if (nb <= 0 || nbh != DKIM_HASH_LEN)
		return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "bad b= or bh=");
	sig->b_len = (size_t)nb;
	memcpy(sig->bh, bh_buf, DKIM_HASH_LEN);
	char *hl = dkim_tag_compact_dup(s, h);
	int hr = dkim_sig_h(sig, hl);
	free(hl);
	if (hr < 0 && !ams) /* an AMS need not sign From (RFC 8617 §4.1.2) */
		return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "h= does not sign From");
	return 0;
}

/* The optional tags: c=, i=, l=, q=, t=, x=. */
static int dkim_sig_optional(struct dkim_verify *v, struct dkim_sig *sig, const char *s,
                             const struct dkim_tag *tags, int n)
{
	const struct dkim_tag *t;
	char *val;
	int bad = 0;
	uint64_t ts = 0, x;
	t = dkim_tag_find(s, tags, n, "c");
	val = t != NULL ? dkim_tag_compact_dup(s, t) : NULL;
	bad |= dkim_sig_canon(sig, val);
	free(val);
	if (bad)
		return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "bad c=");
	if ((t = dkim_tag_find(s, tags, n, "i")) != NULL) {
		val = dkim_tag_dup(s, t);
		bad = v->ams ? dkim_tag_number(val, &sig->instance) : dkim_sig_identity(sig, val);
		free(val);
		if (bad)
			return dkim_sig_error(sig, DKIM_RESULT_PERMERROR,
			                      v->ams ? "bad i=" : "i= is not within d=");
	}
	sig->l = UINT64_MAX;
	if ((t = dkim_tag_find(s, tags, n, "l")) != NULL) {
		val = dkim_tag_dup(s, t);
		bad = dkim_tag_number(val, &sig->l);
		free(val);
		sig->r.body_length = true;
		if (bad)
			return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "bad l=");
	}
	if ((t = dkim_tag_find(s, tags, n, "q")) != NULL) {
		val = dkim_tag_compact_dup(s, t);
		bad = strstr(val, "dns/txt") == NULL;
		free(val);
		if (bad)
			return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "q= has no dns/txt");
	}
	if ((t = dkim_tag_find(s, tags, n, "t")) != NULL) {
		val = dkim_tag_dup(s, t);
		bad = dkim_tag_number(val, &ts);
		free(val);
		if (bad)
			return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "bad t=");
	}
	if ((t = dkim_tag_find(s, tags, n, "x")) != NULL) {
		val = dkim_tag_dup(s, t);
		bad = dkim_tag_number(val, &x);
		free(val);
		if (bad || x < ts)
			return dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "bad x=");
		if ((int64_t)x < v->now)
			return dkim_sig_error(sig, DKIM_RESULT_PERMERROR,
			                      "the signature has expired");
	}
	return 0;
}

/* Parse the signature in field f; on an error the signature has its result already. */
static void dkim_sig_parse(struct dkim_verify *v, struct dkim_sig *sig, const struct dkim_field *f)
{
	const char *s = (const char *)v->msg + f->start;
	const char *colon = memchr(s, ':', f->len);
	sig->r.domain = sig->r.selector = sig->r.algorithm = sig->r.b_prefix = "";
	size_t start = (size_t)(colon - s) + 1, end = f->len;
	while (end > start && (s[end - 1] == '\n' || s[end - 1] == '\r'))
		end--;
	struct dkim_tag tags[DKIM_TAGS_MAX];
	int n = dkim_tags_parse(s + start, end - start, tags, DKIM_TAGS_MAX);
	for (int i = 0; i < n; i++) { /* offsets from the field's start */
		tags[i].name += start;
		tags[i].value += start;
		tags[i].eq += start;
		tags[i].end += start;
	}
	if (n < 0) {
		dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "syntax error in the signature");
		return;
	}
	if (dkim_sig_required(sig, s, tags, n, v->ams) < 0 ||
	    dkim_sig_optional(v, sig, s, tags, n) < 0)
		return;
	size_t kn = strlen(sig->s) + strlen(sig->d) + 13;
	sig->key_name = xmalloc(kn);
	snprintf(sig->key_name, kn, "%s._domainkey.%s", sig->s, sig->d);
}

/* ---- the check (§6.1.3) ---- */

/* SHA-256 of the signed header fields and the signature field with b= emptied. */
static int dkim_header_digest(struct dkim_verify *v, const struct dkim_sig *sig,
                              unsigned char digest[DKIM_HASH_LEN])
{
	size_t *picked = arena_alloc(v->arena, sig->nh * sizeof(*picked));
	dkim_canon_select(v->msg, v->fields, v->nfields, (const char *const *)sig->h, sig->nh,
	                  picked);
	const struct dkim_field *f = &v->fields[sig->field];
	const unsigned char *fs = v->msg + f->start;
	struct buf field, canon;
	buf_init(&field, f->len + 1);
	buf_init(&canon, 2 * f->len + 16);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int dlen = 0;
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	         dkim_hash_fields(md, sig->hc, v->msg, v->fields, picked, sig->nh) == 0 &&
	         buf_append(&field, fs, sig->b_eq) == 0 &&
	         buf_append(&field, fs + sig->b_end, f->len - sig->b_end) == 0 &&
	         dkim_canon_header(sig->hc, (const unsigned char *)field.data, field.len, false,
	                           &canon) == 0 &&
	         EVP_DigestUpdate(md, canon.data, canon.len) == 1 &&
	         EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == DKIM_HASH_LEN;
	EVP_MD_CTX_free(md);
	buf_free(&field);
	buf_free(&canon);
	return ok ? 0 : -1;
}

/* The body hash, then the key's checks, then the signature. */
static void dkim_sig_check(struct dkim_verify *v, struct dkim_sig *sig, struct dkim_key *key)
{
	unsigned char bh[DKIM_HASH_LEN], hd[DKIM_HASH_LEN];
	uint64_t canon_len = 0;
	sig->r.testing = key->testing;
	if (key->strict && sig->i_domain != NULL && strcasecmp(sig->i_domain, sig->d) != 0)
		dkim_sig_error(sig, DKIM_RESULT_PERMERROR, "the key (t=s) wants i= equal to d=");
	else if (dkim_hash_body(v->msg, v->body, v->len, sig->bc, sig->l, bh, &canon_len) < 0 ||
	         dkim_header_digest(v, sig, hd) < 0)
		dkim_sig_error(sig, DKIM_RESULT_TEMPERROR, "hashing failed");
	else if (sig->l != UINT64_MAX && canon_len < sig->l)
		dkim_sig_error(sig, DKIM_RESULT_FAIL, "the body is shorter than l=");
	else if (memcmp(bh, sig->bh, DKIM_HASH_LEN) != 0)
		dkim_sig_error(sig, DKIM_RESULT_FAIL, "body hash did not verify");
	else if (!dkim_signature_ok(key->pkey, sig->ed25519, sig->b, sig->b_len, hd))
		dkim_sig_error(sig, DKIM_RESULT_FAIL, "signature did not verify");
	else {
		sig->r.result = DKIM_RESULT_PASS;
		sig->done = true;
	}
}

/* The key answer for sig: its first record decides. */
static void dkim_sig_with_answer(struct dkim_verify *v, struct dkim_sig *sig,
                                 const struct dkim_key_answer *a)
{
	struct dkim_key key;
	bool tempfail;
	const char *problem;
	if (dkim_key_from_answer(v->key_cache, a, sig->ed25519, &key, &tempfail, &problem) < 0)
		dkim_sig_error(sig, tempfail ? DKIM_RESULT_TEMPERROR : DKIM_RESULT_PERMERROR,
		               problem);
	else
		dkim_sig_check(v, sig, &key);
	EVP_PKEY_free(key.pkey);
}

/* ---- the API ---- */

static void dkim_sig_free(struct dkim_sig *sig)
{
	free(sig->d);
	free(sig->s);
	free(sig->a);
	free(sig->bpref);
	free(sig->key_name);
	free(sig->i_domain);
	for (size_t k = 0; k < sig->nh; k++)
		free(sig->h[k]);
	memset(sig, 0, sizeof(*sig));
}

static void dkim_verify_add_sig(struct dkim_verify *v, size_t field)
{
	struct dkim_sig *sig = &v->sigs[v->nsigs++];
	memset(sig, 0, sizeof(*sig));
	sig->field = field;
	dkim_sig_parse(v, sig, &v->fields[field]);
}

/* A verifier of msg's fields named name (at most max of them); with ams, only the
 * ARC-Message-Signature of instance ams_instance. */
static struct dkim_verify *dkim_verify_open(const unsigned char *msg, size_t len, size_t max,
                                            int64_t now, bool ams, uint64_t ams_instance)
{
	struct dkim_verify *v = xcalloc(1, sizeof(*v));
	v->now = now;
	v->ams = ams;
	v->ams_instance = ams_instance;
	v->arena = arena_new(16384);
	msg = dkim_canon_message(msg, len, &v->copy, &len);
	v->msg = msg;
	v->len = len;
	v->nfields =
	    dkim_canon_fields(v->arena, msg, len, DKIM_VERIFY_FIELDS_MAX, &v->fields, &v->body);
	v->sigs = xcalloc(max > 0 ? max : 1, sizeof(*v->sigs));
	const char *name = ams ? "ARC-Message-Signature" : "DKIM-Signature";
	for (size_t i = 0; i < v->nfields && v->nsigs < max; i++) {
		if (!dkim_canon_field_is(msg, &v->fields[i], name))
			continue;
		dkim_verify_add_sig(v, i);
		if (ams && v->sigs[v->nsigs - 1].instance != ams_instance)
			dkim_sig_free(&v->sigs[--v->nsigs]);
	}
	return v;
}

struct dkim_verify *dkim_verify_new(const unsigned char *msg, size_t len, size_t max_signatures,
                                    int64_t now)
{
	return dkim_verify_open(msg, len, max_signatures, now, false, 0);
}

struct dkim_verify *dkim_verify_new_ams(const unsigned char *msg, size_t len, uint64_t instance,
                                        int64_t now)
{
	return dkim_verify_open(msg, len, 1, now, true, instance);
}

void dkim_verify_set_key_cache(struct dkim_verify *v, struct dkim_key_cache *cache)
{
	v->key_cache = cache;
}

void dkim_verify_free(struct dkim_verify **vp)
{
	struct dkim_verify *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nsigs; i++)
		dkim_sig_free(&v->sigs[i]);
	dkim_key_answers_free(&v->keys);
	free(v->sigs);
	free(v->copy);
	arena_free(&v->arena);
	free(v);
	*vp = NULL;
}

int dkim_verify_run(struct dkim_verify *v)
{
	for (size_t i = 0; i < v->nsigs; i++) {
		struct dkim_sig *sig = &v->sigs[i];
		if (sig->done)
			continue;
		const struct dkim_key_answer *a = dkim_key_answers_find(&v->keys, sig->key_name);
		if (a == NULL) {
			v->need = sig->key_name;
			return 0;
		}
		dkim_sig_with_answer(v, sig, a);
	}
	return 1;
}

const char *dkim_verify_need(const struct dkim_verify *v)
{
	return v->need;
}

void dkim_verify_answer(struct dkim_verify *v, const char *name, enum dkim_dns_status status,
                        const char *const *texts, const size_t *lens, size_t n)
{
	dkim_key_answers_add(&v->keys, name, status, texts, lens, n);
}

size_t dkim_verify_count(const struct dkim_verify *v)
{
	return v->nsigs;
}

const struct dkim_signature_result *dkim_verify_result(const struct dkim_verify *v, size_t i)
{
	return i < v->nsigs ? &v->sigs[i].r : NULL;
}

const char *dkim_result_name(enum dkim_result result)
{
	static const char *const names[] = {"pass",   "fail",      "neutral",
	                                    "policy", "temperror", "permerror"};
	return (unsigned)result < sizeof(names) / sizeof(names[0]) ? names[result] : "permerror";
}
