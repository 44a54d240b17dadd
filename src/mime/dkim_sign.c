/* DKIM signing (see dkim_sign.h): body hash, header selection, the DKIM-Signature field,
 * and the RSA / Ed25519 signature over the canonical header data. */
#include "mime/dkim_sign.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rsa.h>

#include "core/base64.h"
#include "core/crlf.h"
#include "core/xmalloc.h"
#include "mime/address.h"
#include "mime/dkim_hash.h"
#include "mime/rfc822_addr.h"
#include "core/banned.h"

/* Oversigned: the fields that carry what a reader sees and what DMARC and threading rely
 * on; a second instance added in transit is how a signed message gets a forged author or
 * subject (RFC 6376 §8.15). Signed when present only: the rest of the MIME and list fields
 * and the Resent-* block. Never signed: Return-Path, Received, DKIM-Signature and other
 * trace or transport fields, and X-* fields (all of them are changed or added in transit). */
const struct dkim_sign_field_rule dkim_sign_fields[] = {
    {"From", true},
    {"Sender", true},
    {"Reply-To", true},
    {"Subject", true},
    {"Date", true},
    {"Message-ID", true},
    {"To", true},
    {"Cc", true},
    {"In-Reply-To", true},
    {"References", true},
    {"MIME-Version", true},
    {"Content-Type", true},
    {"Content-Transfer-Encoding", true},
    {"List-Id", true},
    {"List-Unsubscribe", true},
    {"List-Unsubscribe-Post", true},
    {"Content-Disposition", false},
    {"Content-ID", false},
    {"Content-Description", false},
    {"Content-Language", false},
    {"List-Help", false},
    {"List-Subscribe", false},
    {"List-Post", false},
    {"List-Owner", false},
    {"List-Archive", false},
    {"Resent-Date", false},
    {"Resent-From", false},
    {"Resent-Sender", false},
    {"Resent-To", false},
    {"Resent-Cc", false},
    {"Resent-Message-ID", false},
    {"Disposition-Notification-To", false},
    {"Autocrypt", false},
    {"OpenPGP", false},
};
const size_t dkim_sign_fields_count = sizeof(dkim_sign_fields) / sizeof(dkim_sign_fields[0]);

#define DKIM_FOLD_WIDTH 78
#define DKIM_FIELDS_MAX 10000 /* header fields looked at; a header section is bounded anyway */

const char *dkim_algorithm_name(enum dkim_algorithm alg)
{
	return alg == DKIM_ALG_ED25519 ? "ed25519" : "rsa";
}

int dkim_algorithm_parse(const char *name, enum dkim_algorithm *alg_r)
{
	if (strcmp(name, "rsa") == 0)
		*alg_r = DKIM_ALG_RSA;
	else if (strcmp(name, "ed25519") == 0)
		*alg_r = DKIM_ALG_ED25519;
	else
		return -1;
	return 0;
}

size_t dkim_sign_h_list(struct arena *arena, const unsigned char *msg,
                        const struct dkim_field *fields, size_t nfields, const char ***names_r)
{
	size_t counts[sizeof(dkim_sign_fields) / sizeof(dkim_sign_fields[0])];
	size_t total = 0;
	for (size_t r = 0; r < dkim_sign_fields_count; r++) {
		size_t n = 0;
		for (size_t i = 0; i < nfields && n < DKIM_SIGN_INSTANCES_MAX; i++)
			if (dkim_canon_field_is(msg, &fields[i], dkim_sign_fields[r].name))
				n++;
		counts[r] = n + (dkim_sign_fields[r].oversign ? 1 : 0);
		total += counts[r];
	}
	const char **names = arena_alloc(arena, total * sizeof(*names));
	size_t k = 0;
	for (size_t r = 0; r < dkim_sign_fields_count; r++)
		for (size_t i = 0; i < counts[r]; i++)
			names[k++] = dkim_sign_fields[r].name;
	*names_r = names;
	return total;
}

/* ---- the signing domain ---- */

const char *dkim_sign_domain(struct arena *arena, const unsigned char *msg, size_t len)
{
	struct dkim_field *fields;
	size_t body;
	size_t n = dkim_canon_fields(arena, msg, len, DKIM_FIELDS_MAX, &fields, &body);
	const struct dkim_field *from = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!dkim_canon_field_is(msg, &fields[i], "From"))
			continue;
		if (from != NULL)
			return NULL; /* two From fields: whose author? (RFC 5322 §3.6 allows one) */
		from = &fields[i];
	}
	if (from == NULL)
		return NULL;
	size_t value = from->start + from->name_len;
	while (msg[value] != ':')
		value++;
	value++;
	struct rfc822_address *list =
	    rfc822_addr_parse_list(arena, msg + value, from->start + from->len - value);
	const char *domain = NULL;
	for (struct rfc822_address *a = list; a != NULL; a = a->next) {
		if (a->domain == NULL)
			continue; /* group markers */
		if (a->invalid || (domain != NULL && strcasecmp(domain, a->domain) != 0))
			return NULL;
		domain = a->domain;
	}
	if (domain == NULL)
		return NULL;
	size_t dlen = strlen(domain);
	char *low = arena_strndup(arena, domain, dlen);
	for (size_t i = 0; i < dlen; i++) {
		if ((unsigned char)low[i] >= 0x80)
			return NULL;
		if (low[i] >= 'A' && low[i] <= 'Z')
			low[i] = (char)(low[i] + 32);
	}
	return address_domain_valid(low, dlen) ? low : NULL;
}

/* ---- hashing ---- */

/* The body hash (bh=) of msg[body..len), relaxed, in base64. */
static int dkim_body_hash(const unsigned char *msg, size_t body, size_t len, char **b64_r)
{
	unsigned char digest[DKIM_HASH_LEN];
	if (dkim_hash_body(msg, body, len, DKIM_CANON_RELAXED, UINT64_MAX, digest, NULL) < 0)
		return -1;
	*b64_r = base64_encode_dup(digest, sizeof(digest));
	return 0;
}

/* ---- the DKIM-Signature field ---- */

struct dkim_fold {
	struct buf *b;
	size_t col;
};

/* Append tok (n octets), preceded by a space when space, starting a new line when it would
 * pass the fold width. */
static int dkim_fold_put(struct dkim_fold *f, const char *tok, size_t n, bool space)
{
	if (f->col + (space ? 1 : 0) + n > DKIM_FOLD_WIDTH && f->col > 8) {
		if (buf_append(f->b, "\r\n\t", 3) < 0)
			return -1;
		f->col = 8;
		space = false;
	}
	if ((space && buf_append(f->b, " ", 1) < 0) || buf_append(f->b, tok, n) < 0)
		return -1;
	f->col += (space ? 1 : 0) + n;
	return 0;
}

static int dkim_fold_fmt(struct dkim_fold *f, bool space, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dkim_fold_fmt(struct dkim_fold *f, bool space, const char *fmt, ...)
{
	char tok[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tok, sizeof(tok), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tok))
		return -1;
	return dkim_fold_put(f, tok, (size_t)n, space);
}

/* The field up to and including "b=" (the value goes after it). */
static int dkim_field_prefix(struct buf *out, const struct dkim_key *key, time_t now,
                             const char *const *names, size_t nnames, const char *bh)
{
	struct dkim_fold f = {out, 0};
	char t[32];
	snprintf(t, sizeof(t), "%" PRId64, (int64_t)now);
	const char *a = key->alg == DKIM_ALG_ED25519 ? "ed25519-sha256" : "rsa-sha256";
	if (buf_puts(out, "DKIM-Signature:") < 0)
		return -1;
	f.col = 15;
	if (dkim_fold_fmt(&f, true, "v=1;") < 0 || dkim_fold_fmt(&f, true, "a=%s;", a) < 0 ||
	    dkim_fold_fmt(&f, true, "c=relaxed/relaxed;") < 0 ||
	    dkim_fold_fmt(&f, true, "d=%s;", key->domain) < 0 ||
	    dkim_fold_fmt(&f, true, "s=%s;", key->selector) < 0 ||
	    dkim_fold_fmt(&f, true, "t=%s;", t) < 0)
		return -1;
	/* only the first name follows a space; the others follow a colon (h= allows FWS
	 * around the colons, so a line may break after one) */
	for (size_t i = 0; i < nnames; i++)
		if (dkim_fold_fmt(&f, i == 0, i == 0 ? "h=%s%s" : "%s%s", names[i],
		                  i + 1 == nnames ? ";" : ":") < 0)
			return -1;
	if (dkim_fold_fmt(&f, true, "bh=%s;", bh) < 0 || dkim_fold_fmt(&f, true, "b=") < 0)
		return -1;
	return (int)f.col;
}

/* Append the signature value sig (base64) after the prefix, folded; then CRLF. */
static int dkim_field_value(struct buf *out, size_t col, const char *sig)
{
	size_t len = strlen(sig), pos = 0;
	while (pos < len) {
		if (col >= DKIM_FOLD_WIDTH) {
			if (buf_append(out, "\r\n\t", 3) < 0)
				return -1;
			col = 8;
		}
		size_t k = DKIM_FOLD_WIDTH - col;
		if (k > len - pos)
			k = len - pos;
		if (buf_append(out, sig + pos, k) < 0)
			return -1;
		pos += k;
		col += k;
	}
	return buf_append(out, "\r\n", 2);
}

/* ---- signing ---- */

/* Sign the SHA-256 digest of the header data with key (RFC 6376 §3.3.1 for RSA: PKCS #1
 * v1.5 with the SHA-256 DigestInfo, which is what signing the data itself gives; RFC 8463
 * §3: Ed25519 (pure) over the 32-octet SHA-256 digest). */
static int dkim_sign_digest(const struct dkim_key *key, const unsigned char *digest, size_t dlen,
                            char **b64_r)
{
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	int ok = 0;
	if (key->alg == DKIM_ALG_ED25519) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		ok = ctx != NULL && EVP_PKEY_get_base_id(key->pkey) == EVP_PKEY_ED25519 &&
		     EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
		     EVP_DigestSign(ctx, sig, &siglen, digest, dlen) == 1;
		EVP_MD_CTX_free(ctx);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key->pkey, NULL);
		ok = ctx != NULL && EVP_PKEY_get_base_id(key->pkey) == EVP_PKEY_RSA &&
		     EVP_PKEY_get_size(key->pkey) <= (int)sizeof(sig) &&
		     EVP_PKEY_sign_init(ctx) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		     EVP_PKEY_sign(ctx, sig, &siglen, digest, dlen) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	if (!ok)
		return -1;
	*b64_r = base64_encode_dup(sig, siglen);
	return 0;
}

/* One signature: the field with an empty b=, hashed after the shared prefix, signed. */
static int dkim_sign_one(const struct dkim_key *key, const EVP_MD_CTX *shared, time_t now,
                         const char *const *names, size_t nnames, const char *bh, struct buf *out)
{
	struct buf field, canon;
	buf_init(&field, 1 << 20);
	buf_init(&canon, 1 << 20);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char *sig = NULL;
	int col = dkim_field_prefix(&field, key, now, names, nnames, bh);
	int ret = -1;
	if (col >= 0 && md != NULL && EVP_MD_CTX_copy_ex(md, shared) == 1 &&
	    dkim_canon_header(DKIM_CANON_RELAXED, (const unsigned char *)field.data, field.len,
	                      false, &canon) == 0 &&
	    EVP_DigestUpdate(md, canon.data, canon.len) == 1 &&
	    EVP_DigestFinal_ex(md, digest, &dlen) == 1 &&
	    dkim_sign_digest(key, digest, dlen, &sig) == 0 &&
	    dkim_field_value(&field, (size_t)col, sig) == 0 &&
	    buf_append(out, field.data, field.len) == 0)
		ret = 0;
	free(sig);
	EVP_MD_CTX_free(md);
	buf_free(&field);
	buf_free(&canon);
	return ret;
}

/* True when msg has a CR not followed by LF or an LF not preceded by CR. */
static bool dkim_has_bare_line_end(const unsigned char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\r' && (i + 1 == len || msg[i + 1] != '\n'))
			return true;
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			return true;
	}
	return false;
}

static int dkim_sign_normalised(struct arena *arena, const unsigned char *msg, size_t len,
                                const struct dkim_key *keys, size_t nkeys, time_t now,
                                struct buf *out, const char **error_r)
{
	struct dkim_field *fields;
	size_t body;
	size_t nfields = dkim_canon_fields(arena, msg, len, DKIM_FIELDS_MAX, &fields, &body);
	bool from = false;
	for (size_t i = 0; i < nfields && !from; i++)
		from = dkim_canon_field_is(msg, &fields[i], "From");
	if (!from) {
		*error_r = "the message has no From: field";
		return -1;
	}
	const char **names;
	size_t nnames = dkim_sign_h_list(arena, msg, fields, nfields, &names);
	size_t *picked = arena_alloc(arena, nnames * sizeof(*picked));
	dkim_canon_select(msg, fields, nfields, names, nnames, picked);
	char *bh = NULL;
	EVP_MD_CTX *shared = EVP_MD_CTX_new();
	*error_r = "signing failed";
	int ret = -1;
	if (shared != NULL && EVP_DigestInit_ex(shared, EVP_sha256(), NULL) == 1 &&
	    dkim_hash_fields(shared, DKIM_CANON_RELAXED, msg, fields, picked, nnames) == 0 &&
	    dkim_body_hash(msg, body, len, &bh) == 0) {
		ret = (int)nkeys;
		for (size_t k = 0; k < nkeys && ret >= 0; k++) {
			if (dkim_sign_one(&keys[k], shared, now, names, nnames, bh, out) < 0) {
				*error_r = "signing failed (does the key match its algorithm?)";
				ret = -1;
			}
		}
	}
	free(bh);
	EVP_MD_CTX_free(shared);
	return ret;
}

int dkim_sign(const unsigned char *msg, size_t len, const struct dkim_key *keys, size_t nkeys,
              time_t now, struct buf *out, const char **error_r)
{
	struct arena *arena = arena_new(16384);
	unsigned char *copy = NULL;
	if (dkim_has_bare_line_end(msg, len)) {
		struct crlf st;
		crlf_init(&st);
		copy = xmalloc(2 * len + 3);
		size_t n = crlf_convert(&st, msg, len, copy);
		n += crlf_finish(&st, copy + n);
		msg = copy;
		len = n;
	}
	int ret = dkim_sign_normalised(arena, msg, len, keys, nkeys, now, out, error_r);
	free(copy);
	arena_free(&arena);
	return ret;
}
