/* Unit tests for mime/dkim_sign: which domain a message is signed for, the h= list with
 * its oversigned names, the DKIM-Signature field's shape (tags, folding, one field per
 * key), refusals; and a check of an Ed25519 and an RSA signature with OpenSSL's verify
 * over header data rebuilt here from the canonicaliser (dkimpy and opendkim check the
 * same end to end in tests/integration/test_dkim.py). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/rsa.h>

#include "core/base64.h"
#include "mime/dkim_sign.h"
#include "core/banned.h"

static const char *domain_of(const char *msg)
{
	static char out[300];
	struct arena *a = arena_new(4096);
	const char *d = dkim_sign_domain(a, (const unsigned char *)msg, strlen(msg));
	snprintf(out, sizeof(out), "%s", d != NULL ? d : "(none)");
	arena_free(&a);
	return out;
}

static void test_domain(void **state)
{
	(void)state;
	assert_string_equal(domain_of("From: A <a@Example.TEST>\r\n\r\nx"), "example.test");
	assert_string_equal(domain_of("Subject: x\r\nfrom:b@ex.test\n\nx"), "ex.test");
	assert_string_equal(domain_of("From: a@x.test, b@X.test\r\n\r\n"), "x.test");
	assert_string_equal(domain_of("From: team: a@x.test, b@x.test;\r\n\r\n"), "x.test");
	assert_string_equal(domain_of("From: a@x.test (comment)\r\n\r\n"), "x.test");
	/* Sender/Reply-To do not count; the body does not count */
	assert_string_equal(domain_of("Sender: s@other.test\r\nFrom: a@x.test\r\nReply-To: "
	                              "r@y.test\r\n\r\nFrom: z@z.test\r\n"),
	                    "x.test");
	/* no From, two From fields, mixed domains, no domain, a literal, a U-label */
	assert_string_equal(domain_of("To: a@x.test\r\n\r\n"), "(none)");
	assert_string_equal(domain_of("From: a@x.test\r\nFrom: a@x.test\r\n\r\n"), "(none)");
	assert_string_equal(domain_of("From: a@x.test, b@y.test\r\n\r\n"), "(none)");
	assert_string_equal(domain_of("From: undisclosed\r\n\r\n"), "(none)");
	assert_string_equal(domain_of("From: a@[192.0.2.1]\r\n\r\n"), "(none)");
	assert_string_equal(domain_of("From: a@b\xc3\xbc.test\r\n\r\n"), "(none)");
	assert_string_equal(domain_of("From: a@../../etc\r\n\r\n"), "(none)");
	assert_string_equal(domain_of(""), "(none)");
}

static void test_h_list(void **state)
{
	(void)state;
	const char *m = "Received: x\r\nFrom: a@x.test\r\nTo: b\r\nTo: c\r\nX-Y: z\r\n"
	                "List-Post: <mailto:l@x.test>\r\nReturn-Path: <a@x.test>\r\n\r\n";
	struct arena *a = arena_new(4096);
	struct dkim_field *f;
	size_t body;
	size_t n = dkim_canon_fields(a, (const unsigned char *)m, strlen(m), 100, &f, &body);
	const char **names;
	size_t k = dkim_sign_h_list(a, (const unsigned char *)m, f, n, &names);
	size_t from = 0, to = 0, subject = 0, post = 0, other = 0;
	for (size_t i = 0; i < k; i++) {
		if (strcmp(names[i], "From") == 0)
			from++;
		else if (strcmp(names[i], "To") == 0)
			to++;
		else if (strcmp(names[i], "Subject") == 0)
			subject++;
		else if (strcmp(names[i], "List-Post") == 0)
			post++;
		else if (strcasecmp(names[i], "Received") == 0 ||
		         strcasecmp(names[i], "X-Y") == 0 ||
		         strcasecmp(names[i], "Return-Path") == 0)
			other++;
	}
	assert_int_equal(from, 2);    /* one present + one oversigned */
	assert_int_equal(to, 3);      /* two present + one */
	assert_int_equal(subject, 1); /* absent: only the oversigned null instance */
	assert_int_equal(post, 1);    /* present, not oversigned */
	assert_int_equal(other, 0);
	assert_string_equal(names[0], "From");
	arena_free(&a);
}

static EVP_PKEY *keygen(enum dkim_algorithm alg)
{
	EVP_PKEY *k = alg == DKIM_ALG_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
	                                      : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	assert_non_null(k);
	return k;
}

/* The value of tag name in the (unfolded) field, in a static buffer. */
static const char *tag(const char *field, const char *name)
{
	static char out[4096];
	char pat[16];
	snprintf(pat, sizeof(pat), "%s=", name);
	const char *p = field;
	while ((p = strstr(p, pat)) != NULL && p != field && p[-1] != ' ' && p[-1] != '\t')
		p++;
	assert_non_null(p);
	p += strlen(pat);
	size_t n = 0;
	for (; *p != '\0' && *p != ';' && n + 1 < sizeof(out); p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			out[n++] = *p;
	out[n] = '\0';
	return out;
}

static void collect(void *ctx, const unsigned char *data, size_t len)
{
	assert_int_equal(buf_append(ctx, data, len), 0);
}

/* Verify one signature field sig (its text, CRLF included) of msg as a verifier would:
 * rebuild the header data from h= and the field with b= emptied, check bh= and b=. */
static void verify(const char *msg, const char *sig, EVP_PKEY *key, enum dkim_algorithm alg)
{
	struct arena *a = arena_new(4096);
	struct dkim_field *f;
	size_t body,
	    n = dkim_canon_fields(a, (const unsigned char *)msg, strlen(msg), 100, &f, &body);
	/* bh */
	struct buf canon;
	buf_init(&canon, 1 << 20);
	struct dkim_body_canon bc;
	dkim_body_canon_init(&bc, DKIM_CANON_RELAXED, collect, &canon);
	dkim_body_canon_update(&bc, (const unsigned char *)msg + body, strlen(msg) - body);
	dkim_body_canon_final(&bc);
	unsigned char digest[32];
	unsigned int dlen;
	assert_int_equal(EVP_Digest(canon.data, canon.len, digest, &dlen, EVP_sha256(), NULL), 1);
	char *bh = base64_encode_dup(digest, 32);
	assert_string_equal(tag(sig, "bh"), bh);
	free(bh);
	/* header data: the h= fields, then the signature field without b='s value */
	char h[4096];
	snprintf(h, sizeof(h), "%s", tag(sig, "h"));
	const char *names[200];
	size_t nn = 0;
	for (char *save = NULL, *t = strtok_r(h, ":", &save); t != NULL;
	     t = strtok_r(NULL, ":", &save))
		names[nn++] = t;
	size_t picked[200];
	dkim_canon_select((const unsigned char *)msg, f, n, names, nn, picked);
	buf_reset(&canon);
	for (size_t i = 0; i < nn; i++)
		if (picked[i] != SIZE_MAX)
			assert_int_equal(
			    dkim_canon_header(DKIM_CANON_RELAXED,
			                      (const unsigned char *)msg + f[picked[i]].start,
			                      f[picked[i]].len, true, &canon),
			    0);
	const char *b = strstr(sig, " b=");
	if (b == NULL)
		b = strstr(sig, "\tb=");
	assert_non_null(b);
	assert_int_equal(dkim_canon_header(DKIM_CANON_RELAXED, (const unsigned char *)sig,
	                                   (size_t)(b + 3 - sig), false, &canon),
	                 0);
	unsigned char raw[1024];
	const char *b64 = tag(sig, "b");
	ssize_t rlen = base64_decode(b64, strlen(b64), raw, sizeof(raw));
	assert_true(rlen > 0);
	assert_int_equal(EVP_Digest(canon.data, canon.len, digest, &dlen, EVP_sha256(), NULL), 1);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (alg == DKIM_ALG_ED25519) {
		/* RFC 8463 §3: Ed25519 over the SHA-256 of the header data */
		assert_int_equal(EVP_DigestVerifyInit(md, NULL, NULL, NULL, key), 1);
		assert_int_equal(EVP_DigestVerify(md, raw, (size_t)rlen, digest, 32), 1);
	} else {
		assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
		assert_int_equal(EVP_DigestVerify(md, raw, (size_t)rlen,
		                                  (const unsigned char *)canon.data, canon.len),
		                 1);
	}
	EVP_MD_CTX_free(md);
	buf_free(&canon);
	arena_free(&a);
}

static void test_sign_two_keys(void **state)
{
	(void)state;
	const char *msg = "Return-Path: <a@x.test>\r\nFrom: A <a@x.test>\r\nTo: b@y.test\r\n"
	                  "Subject: hi  there\r\n\tfolded\r\n\r\nbody  \r\n\r\n";
	struct dkim_key keys[2] = {
	    {"x.test", "s1", DKIM_ALG_ED25519, keygen(DKIM_ALG_ED25519)},
	    {"x.test", "s2", DKIM_ALG_RSA, keygen(DKIM_ALG_RSA)},
	};
	struct buf out;
	buf_init(&out, 1 << 20);
	const char *error;
	assert_int_equal(
	    dkim_sign((const unsigned char *)msg, strlen(msg), keys, 2, 1765000000, &out, &error),
	    2);
	const char *text = buf_cstr(&out);
	const char *second = strstr(text + 1, "DKIM-Signature: ");
	assert_non_null(second);
	assert_memory_equal(text, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;", 57);
	assert_memory_equal(second, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;", 53);
	/* no line over 78 columns; continuation lines start with a tab; ends with CRLF */
	size_t col = 0;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\n') {
			assert_true(p[1] == '\0' || p[1] == '\t' || strncmp(p + 1, "DKIM", 4) == 0);
			col = 0;
		} else {
			col += *p == '\t' ? 8 : 1;
			assert_true(col <= 80);
		}
	}
	assert_memory_equal(text + out.len - 2, "\r\n", 2);
	char first[8192];
	snprintf(first, sizeof(first), "%.*s", (int)(second - text), text);
	assert_string_equal(tag(first, "d"), "x.test");
	assert_string_equal(tag(first, "s"), "s1");
	assert_string_equal(tag(first, "t"), "1765000000");
	assert_null(strstr(first, " x="));
	assert_null(strstr(first, "Return-Path"));
	verify(msg, first, keys[0].pkey, DKIM_ALG_ED25519);
	verify(msg, second, keys[1].pkey, DKIM_ALG_RSA);
	/* the same message with bare LF line ends gets the same body hash */
	const char *lf = "From: A <a@x.test>\nTo: b@y.test\n\nbody  \n\n";
	struct buf out2;
	buf_init(&out2, 1 << 20);
	assert_int_equal(
	    dkim_sign((const unsigned char *)lf, strlen(lf), keys, 1, 1765000000, &out2, &error),
	    1);
	char bh[100];
	snprintf(bh, sizeof(bh), "%s", tag(first, "bh"));
	assert_string_equal(tag(buf_cstr(&out2), "bh"), bh);
	buf_free(&out2);
	buf_free(&out);
	EVP_PKEY_free(keys[0].pkey);
	EVP_PKEY_free(keys[1].pkey);
}

static void test_sign_refusals(void **state)
{
	(void)state;
	struct dkim_key key = {"x.test", "s", DKIM_ALG_RSA, keygen(DKIM_ALG_ED25519)};
	struct buf out;
	buf_init(&out, 1 << 20);
	const char *error = NULL;
	const char *nofrom = "To: b@y.test\r\n\r\nbody\r\n";
	assert_int_equal(
	    dkim_sign((const unsigned char *)nofrom, strlen(nofrom), &key, 1, 0, &out, &error), -1);
	assert_non_null(strstr(error, "From"));
	/* an Ed25519 key given as RSA */
	const char *msg = "From: a@x.test\r\n\r\n";
	assert_int_equal(
	    dkim_sign((const unsigned char *)msg, strlen(msg), &key, 1, 0, &out, &error), -1);
	assert_int_equal(out.len, 0);
	EVP_PKEY_free(key.pkey);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_domain),
	    cmocka_unit_test(test_h_list),
	    cmocka_unit_test(test_sign_two_keys),
	    cmocka_unit_test(test_sign_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
