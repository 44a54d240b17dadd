/* DKIM and ARC records (see dkim_record.h): tag lists, key records, signature checks, and
 * the key answers a verifier collects. */
#include "mime/dkim_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/base64.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* ---- tag lists (RFC 6376 §3.2) ---- */

static bool dkim_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool dkim_tag_name_char(char c)
{
	return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

int dkim_tags_parse(const char *s, size_t n, struct dkim_tag *tags, size_t max)
{
	size_t count = 0, p = 0;
	while (p < n) {
		struct dkim_tag t;
		while (p < n && dkim_wsp(s[p]))
			p++;
		if (p == n)
			break; /* a trailing ';' */
		t.name = p;
		while (p < n && dkim_tag_name_char(s[p]))
			p++;
		t.name_len = p - t.name;
		while (p < n && dkim_wsp(s[p]))
			p++;
		if (t.name_len == 0 || !((s[t.name] | 0x20) >= 'a' && (s[t.name] | 0x20) <= 'z') ||
		    p == n || s[p] != '=' || count == max)
			return -1;
		t.eq = ++p;
		while (p < n && s[p] != ';') {
			if ((unsigned char)s[p] < 0x21 && !dkim_wsp(s[p]))
				return -1;
			p++;
		}
		t.end = p;
		size_t a = t.eq, b = t.end;
		while (a < b && dkim_wsp(s[a]))
			a++;
		while (b > a && dkim_wsp(s[b - 1]))
			b--;
		t.value = a;
		t.value_len = b - a;
		for (size_t i = 0; i < count; i++)
			if (tags[i].name_len == t.name_len &&
			    memcmp(s + tags[i].name, s + t.name, t.name_len) == 0)
				return -1;
		tags[count++] = t;
		if (p < n)
			p++; /* the ';' */
	}
	return (int)count;
}

const struct dkim_tag *dkim_tag_find(const char *s, const struct dkim_tag *tags, int n,
                                     const char *name)
{
	size_t len = strlen(name);
	for (int i = 0; i < n; i++)
		if (tags[i].name_len == len && memcmp(s + tags[i].name, name, len) == 0)
			return &tags[i];
	return NULL;
}

char *dkim_tag_compact_dup(const char *s, const struct dkim_tag *t)
{
	char *out = xmalloc(t->value_len + 1);
	size_t o = 0;
	for (size_t i = 0; i < t->value_len; i++)
		if (!dkim_wsp(s[t->value + i]))
			out[o++] = s[t->value + i];
	out[o] = '\0';
	return out;
}

char *dkim_tag_dup(const char *s, const struct dkim_tag *t)
{
	return xstrndup(s + t->value, t->value_len);
}

ssize_t dkim_tag_base64(const char *s, const struct dkim_tag *t, unsigned char *out, size_t max)
{
	char *c = dkim_tag_compact_dup(s, t);
	ssize_t n = base64_decode(c, strlen(c), out, max);
	free(c);
	return n;
}

int dkim_tag_number(const char *v, uint64_t *out)
{
	uint64_t n = 0;
	if (*v == '\0')
		return -1;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	*out = n;
	return 0;
}

/* ---- key records (§3.6.1, RFC 8463 §4) ---- */

static int dkim_key_problem(const char **problem_r, const char *why)
{
	*problem_r = why;
	return -1;
}

/* The public key of p=, checked against the algorithm; from the cache when it decoded the
 * same text before (only keys that passed the checks are kept there). */
static int dkim_key_decode(struct dkim_key_cache *cache, const char *s, const struct dkim_tag *p,
                           bool ed25519, struct dkim_key *key, const char **problem_r)
{
	char *text = dkim_tag_compact_dup(s, p);
	size_t text_len = strlen(text);
	key->pkey = dkim_key_cache_get(cache, text, text_len, ed25519);
	if (key->pkey != NULL) {
		free(text);
		return 0;
	}
	unsigned char *raw = xmalloc(DKIM_KEY_MAX);
	ssize_t rn = base64_decode(text, text_len, raw, DKIM_KEY_MAX);
	const unsigned char *q = raw;
	if (rn > 0 && ed25519)
		key->pkey =
		    rn == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32) : NULL;
	else if (rn > 0)
		key->pkey = d2i_PUBKEY(NULL, &q, (long)rn);
	free(raw);
	if (key->pkey == NULL) {
		free(text);
		return dkim_key_problem(problem_r, "the key cannot be read");
	}
	if (!ed25519 && (EVP_PKEY_get_base_id(key->pkey) != EVP_PKEY_RSA ||
	                 EVP_PKEY_get_bits(key->pkey) < 1024)) {
		free(text);
		EVP_PKEY_free(key->pkey);
		key->pkey = NULL;
		return dkim_key_problem(problem_r, "not an RSA key of 1024 bits or more");
	}
	dkim_key_cache_put(cache, text, text_len, ed25519, key->pkey);
	free(text);
	return 0;
}

int dkim_key_parse(struct dkim_key_cache *cache, const char *s, size_t n, bool ed25519,
                   struct dkim_key *key, const char **problem_r)
{
	key->pkey = NULL;
	struct dkim_tag tags[DKIM_TAGS_MAX];
	int nt = dkim_tags_parse(s, n, tags, DKIM_TAGS_MAX);
	if (nt < 0)
		return dkim_key_problem(problem_r, "syntax error in the key record");
	const struct dkim_tag *v = dkim_tag_find(s, tags, nt, "v"),
	                      *h = dkim_tag_find(s, tags, nt, "h"),
	                      *k = dkim_tag_find(s, tags, nt, "k"),
	                      *p = dkim_tag_find(s, tags, nt, "p"),
	                      *srv = dkim_tag_find(s, tags, nt, "s"),
	                      *t = dkim_tag_find(s, tags, nt, "t");
	if (v != NULL &&
	    (v != &tags[0] || v->value_len != 5 || memcmp(s + v->value, "DKIM1", 5) != 0))
		return dkim_key_problem(problem_r, "bad v= in the key record");
	char *hv = h != NULL ? dkim_tag_compact_dup(s, h) : NULL;
	char *kv = k != NULL ? dkim_tag_compact_dup(s, k) : xstrdup("rsa");
	char *sv = srv != NULL ? dkim_tag_compact_dup(s, srv) : xstrdup("*");
	char *tv = t != NULL ? dkim_tag_compact_dup(s, t) : xstrdup("");
	bool hash_ok = hv == NULL || strstr(hv, "sha256") != NULL;
	bool kind_ok = strcmp(kv, ed25519 ? "ed25519" : "rsa") == 0;
	bool service_ok = strcmp(sv, "*") == 0 || strstr(sv, "email") != NULL;
	key->testing = tv[0] == 'y' || strstr(tv, ":y") != NULL;
	key->strict = tv[0] == 's' || strstr(tv, ":s") != NULL;
	free(hv);
	free(kv);
	free(sv);
	free(tv);
	if (!hash_ok || !kind_ok || !service_ok)
		return dkim_key_problem(problem_r, "the key does not fit the signature");
	if (p == NULL || p->value_len == 0)
		return dkim_key_problem(problem_r, "the key is revoked or missing");
	return dkim_key_decode(cache, s, p, ed25519, key, problem_r);
}

bool dkim_signature_ok(EVP_PKEY *pkey, bool ed25519, const unsigned char *sig, size_t len,
                       const unsigned char digest[32])
{
	int ok = 0;
	if (ed25519) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
		     EVP_DigestVerify(ctx, sig, len, digest, 32) == 1;
		EVP_MD_CTX_free(ctx);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
		ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		     EVP_PKEY_verify(ctx, sig, len, digest, 32) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	return ok;
}

/* ---- key answers ---- */

void dkim_key_answers_add(struct dkim_key_answers *a, const char *name, enum dkim_dns_status status,
                          const char *const *texts, const size_t *lens, size_t n)
{
	a->v = xrealloc(a->v, (a->n + 1) * sizeof(*a->v));
	struct dkim_key_answer *k = &a->v[a->n++];
	k->name = xstrdup(name);
	k->status = status;
	k->n = status == DKIM_DNS_OK ? n : 0;
	k->texts = xcalloc(k->n + 1, sizeof(*k->texts));
	k->lens = xcalloc(k->n + 1, sizeof(*k->lens));
	for (size_t i = 0; i < k->n; i++) {
		k->lens[i] = lens != NULL ? lens[i] : strlen(texts[i]);
		k->texts[i] = xmalloc(k->lens[i] + 1);
		memcpy(k->texts[i], texts[i], k->lens[i]);
		k->texts[i][k->lens[i]] = '\0';
	}
}

const struct dkim_key_answer *dkim_key_answers_find(const struct dkim_key_answers *a,
                                                    const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcasecmp(a->v[i].name, name) == 0)
			return &a->v[i];
	return NULL;
}

void dkim_key_answers_free(struct dkim_key_answers *a)
{
	for (size_t i = 0; i < a->n; i++) {
		for (size_t k = 0; k < a->v[i].n; k++)
			free(a->v[i].texts[k]);
		free(a->v[i].texts);
		free(a->v[i].lens);
		free(a->v[i].name);
	}
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

int dkim_key_from_answer(struct dkim_key_cache *cache, const struct dkim_key_answer *a,
                         bool ed25519, struct dkim_key *key, bool *tempfail_r,
                         const char **problem_r)
{
	key->pkey = NULL;
	*tempfail_r = a->status == DKIM_DNS_TEMPFAIL;
	if (*tempfail_r)
		return dkim_key_problem(problem_r, "DNS failure looking up the key");
	if (a->status == DKIM_DNS_NXDOMAIN || a->n == 0)
		return dkim_key_problem(problem_r, "no key for the signature");
	return dkim_key_parse(cache, a->texts[0], a->lens[0], ed25519, key, problem_r);
}
