/* Unit tests for auth/sasl: mechanism names, PLAIN with and without initial response, with
 * and without authzid, every malformed PLAIN message, cancel, the "=" empty response, the
 * two LOGIN steps, and SCRAM-SHA-256: the RFC 7677 §3 exchange (server nonce forced through
 * the test seam), wrong passwords, unknown users (fake but stable salts), GS2 headers,
 * authzid, escaped names, limits, malformed messages and cancels. Base64 responses are
 * built with base64_encode_dup(); the client side of SCRAM is computed here with OpenSSL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/sasl.h"
#include "core/base64.h"
#include "core/banned.h"

/* One step with a response given as raw bytes (encoded here). */
static int step_raw(struct sasl_server *sasl, const void *raw, size_t len, const char **chal_r,
                    const char **err_r)
{
	char *b64 = base64_encode_dup(raw, len);
	int ret = sasl_server_step(sasl, b64, chal_r, err_r);
	free(b64);
	return ret;
}

static void assert_creds(struct sasl_server *sasl, const char *authzid, const char *authcid,
                         const char *password)
{
	const char *z, *c, *p;
	sasl_server_credentials(sasl, &z, &c, &p);
	assert_string_equal(z, authzid);
	assert_string_equal(c, authcid);
	assert_string_equal(p, password);
}

/* A PLAIN exchange with raw message msg[0..len) as initial response; returns the result. */
static int plain_once(const void *msg, size_t len, const char **err_r)
{
	const char *chal;
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	int ret = step_raw(sasl, msg, len, &chal, err_r);
	sasl_server_free(&sasl);
	assert_null(sasl);
	return ret;
}

static void test_mech_names(void **state)
{
	(void)state;
	enum sasl_mech m;
	assert_int_equal(sasl_mech_parse("plain", &m), 0);
	assert_int_equal(m, SASL_MECH_PLAIN);
	assert_int_equal(sasl_mech_parse("LoGiN", &m), 0);
	assert_int_equal(m, SASL_MECH_LOGIN);
	assert_int_equal(sasl_mech_parse("scram-sha-256", &m), 0);
	assert_int_equal(m, SASL_MECH_SCRAM_SHA_256);
	assert_int_equal(sasl_mech_parse("SCRAM-SHA-1", &m), -1);
	assert_int_equal(sasl_mech_parse("SCRAM-SHA-256-PLUS", &m), -1);
	assert_int_equal(sasl_mech_parse("CRAM-MD5", &m), -1);
	assert_int_equal(sasl_mech_parse("", &m), -1);
	assert_int_equal(sasl_mech_parse("PLAINX", &m), -1);
	assert_string_equal(sasl_mech_list(), "SCRAM-SHA-256 PLAIN LOGIN");
	assert_string_equal(sasl_mech_name(SASL_MECH_LOGIN), "LOGIN");
	assert_string_equal(sasl_mech_name(SASL_MECH_SCRAM_SHA_256), "SCRAM-SHA-256");
	struct sasl_server *none = NULL;
	sasl_server_free(&none);
}

static void test_plain_initial(void **state)
{
	(void)state;
	const char *chal, *err;
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN, 1024);
	/* RFC 4616 §4 example: "\0tim\0tanstaaftanstaaf" */
	assert_int_equal(sasl_server_step(sasl, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &chal, &err), 1);
	assert_creds(sasl, "", "tim", "tanstaaftanstaaf");
	/* The exchange is over. */
	assert_int_equal(sasl_server_step(sasl, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &chal, &err), -1);
	sasl_server_free(&sasl);
}

static void test_plain_no_initial(void **state)
{
	(void)state;
	const char *chal = NULL, *err;
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_string_equal(chal, "");
	assert_int_equal(step_raw(sasl, "\0alice\0s3cret", 13, &chal, &err), 1);
	assert_creds(sasl, "", "alice", "s3cret");
	sasl_server_free(&sasl);

	/* A second "no response" after the empty challenge is not an answer. */
	sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), -1);
	sasl_server_free(&sasl);
}

static void test_plain_authzid(void **state)
{
	(void)state;
	const char *chal, *err;
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	/* RFC 4616 §4 example: "Ursel\0Kurt\0xipj3plmq" */
	assert_int_equal(sasl_server_step(sasl, "VXJzZWwAS3VydAB4aXBqM3BsbXE=", &chal, &err), 1);
	assert_creds(sasl, "Ursel", "Kurt", "xipj3plmq");
	sasl_server_free(&sasl);

	/* UTF-8 identities are fine. */
	sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(step_raw(sasl, "\0j\xc3\xb6rg\0pw", 9, &chal, &err), 1);
	assert_creds(sasl, "", "j\xc3\xb6rg", "pw");
	sasl_server_free(&sasl);
}

static void test_plain_empty_fields(void **state)
{
	(void)state;
	const char *err;
	assert_int_equal(plain_once("\0\0pw", 4, &err), -1); /* empty authcid */
	assert_string_equal(err, "empty authentication identity");
	assert_int_equal(plain_once("\0bob\0", 5, &err), -1); /* empty password */
	assert_string_equal(err, "empty password");
	assert_int_equal(plain_once("a\0\0", 3, &err), -1);
	assert_int_equal(plain_once("\0", 1, &err), -1);
}

static void test_plain_missing_nul(void **state)
{
	(void)state;
	const char *err;
	assert_int_equal(plain_once("bobpw", 5, &err), -1);
	assert_non_null(err);
	assert_int_equal(plain_once("bob\0pw", 6, &err), -1);         /* one NUL only */
	assert_int_equal(plain_once("\0bob\0pw\0x", 9, &err), -1);    /* NUL in password */
	assert_int_equal(plain_once("\0b\nb\0pw", 7, &err), -1);      /* control char in authcid */
	assert_int_equal(plain_once("\0b\xffz\0pw", 7, &err), -1);    /* not UTF-8 */
	assert_int_equal(plain_once("\0\xc0\xafz\0pw", 7, &err), -1); /* overlong UTF-8 */
	assert_int_equal(plain_once("\0\xed\xa0\x80\0pw", 7, &err), -1); /* surrogate */
	assert_int_equal(plain_once("\0\xe2\x82\0pw", 6, &err), -1);     /* truncated */
	assert_int_equal(plain_once("\0bob\0p\xff\n", 8, &err), 1);      /* password: any octet */
}

static void test_plain_too_long(void **state)
{
	(void)state;
	const char *chal, *err;
	char msg[800];

	/* 255-octet fields are the maximum (RFC 4616 §2). */
	memset(msg, 'a', sizeof(msg));
	msg[0] = '\0';
	msg[256] = '\0';
	assert_int_equal(plain_once(msg, 512, &err), 1);
	assert_int_equal(plain_once(msg, 513, &err), -1); /* 256-octet password */
	msg[256] = 'a';
	msg[257] = '\0';
	assert_int_equal(plain_once(msg, 300, &err), -1); /* 256-octet authcid */
	memset(msg, 'a', sizeof(msg));
	msg[256] = '\0';
	msg[260] = '\0';
	assert_int_equal(plain_once(msg, 270, &err), -1); /* 256-octet authzid */

	/* The caller's cap on the decoded response. */
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN, 10);
	assert_int_equal(step_raw(sasl, "\0alice\0pass", 11, &chal, &err), -1);
	assert_string_equal(err, "response too long");
	sasl_server_free(&sasl);
	sasl = sasl_server_new(SASL_MECH_PLAIN, 11);
	assert_int_equal(step_raw(sasl, "\0alice\0pass", 11, &chal, &err), 1);
	sasl_server_free(&sasl);

	/* Huge base64 text is refused without being decoded. */
	char *huge = malloc(100001);
	memset(huge, 'A', 100000);
	huge[100000] = '\0';
	sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(sasl, huge, &chal, &err), -1);
	assert_string_equal(err, "response too long");
	sasl_server_free(&sasl);
	free(huge);
}

static void test_plain_bad_base64(void **state)
{
	(void)state;
	static const char *const bad[] = {"AHRpbQB0YW5zdGFhZnRhbnN0YWF", "AHRp bQB0", "!!!!",
	                                  "AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n", "=="};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *chal, *err;
		struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
		assert_int_equal(sasl_server_step(sasl, bad[i], &chal, &err), -1);
		assert_string_equal(err, "malformed base64");
		sasl_server_free(&sasl);
	}
}

static void test_cancel(void **state)
{
	(void)state;
	const char *chal, *err;
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "*", &chal, &err), -1);
	assert_string_equal(err, "cancelled by client");
	sasl_server_free(&sasl);

	sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(sasl, "*", &chal, &err), -1); /* as initial response */
	sasl_server_free(&sasl);

	sasl = sasl_server_new(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "Ym9i", &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "*", &chal, &err), -1);
	assert_string_equal(err, "cancelled by client");
	sasl_server_free(&sasl);
}

static void test_empty_response(void **state)
{
	(void)state;
	const char *chal, *err;
	/* "=" is an empty initial response: not a valid PLAIN message. */
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(sasl, "=", &chal, &err), -1);
	assert_non_null(err);
	sasl_server_free(&sasl);

	/* An empty continuation line is an empty response: refused too. */
	sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "", &chal, &err), -1);
	sasl_server_free(&sasl);

	/* "=" only means "empty" as an initial response. */
	sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "=", &chal, &err), -1);
	assert_string_equal(err, "malformed base64");
	sasl_server_free(&sasl);

	/* LOGIN with "=" as initial response: empty user name. */
	sasl = sasl_server_new(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_step(sasl, "=", &chal, &err), -1);
	assert_string_equal(err, "empty user name");
	sasl_server_free(&sasl);
}

static void test_login(void **state)
{
	(void)state;
	const char *chal, *err;
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_string_equal(chal, "VXNlcm5hbWU6");
	assert_int_equal(sasl_server_step(sasl, "YWxpY2VAZXhhbXBsZS5vcmc=", &chal, &err), 0);
	assert_string_equal(chal, "UGFzc3dvcmQ6");
	assert_int_equal(sasl_server_step(sasl, "czNjcmV0", &chal, &err), 1);
	assert_creds(sasl, "", "alice@example.org", "s3cret");
	assert_int_equal(sasl_server_step(sasl, "czNjcmV0", &chal, &err), -1);
	sasl_server_free(&sasl);

	/* User name as initial response: straight to the password. */
	sasl = sasl_server_new(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_step(sasl, "Ym9i", &chal, &err), 0);
	assert_string_equal(chal, "UGFzc3dvcmQ6");
	assert_int_equal(sasl_server_step(sasl, "cHc=", &chal, &err), 1);
	assert_creds(sasl, "", "bob", "pw");
	sasl_server_free(&sasl);
}

static void test_login_bad(void **state)
{
	(void)state;
	const char *chal, *err;
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "", &chal, &err), -1); /* empty user name */
	sasl_server_free(&sasl);

	sasl = sasl_server_new(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "Ym9i", &chal, &err), 0);
	assert_int_equal(step_raw(sasl, "p\0w", 3, &chal, &err), -1); /* NUL in password */
	sasl_server_free(&sasl);

	sasl = sasl_server_new(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "Ym9", &chal, &err), -1); /* bad base64 */
	sasl_server_free(&sasl);

	char big[300];
	memset(big, 'x', sizeof(big));
	sasl = sasl_server_new(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(step_raw(sasl, big, 256, &chal, &err), -1); /* too long */
	sasl_server_free(&sasl);
}

/* ---- SCRAM-SHA-256 ---- */

/* RFC 7677 §3: user "user", password "pencil". */
#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CNONCE
#define RFC_SERVER_FIRST "r=" RFC_CNONCE RFC_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                           \
	"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static struct password_scram rfc_keys; /* derived once in the group setup */

static int group_setup(void **state)
{
	(void)state;
	unsigned char salt[16];
	if (base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt)) != 16)
		return -1;
	password_scram_derive("pencil", salt, sizeof(salt), 4096, &rfc_keys);
	return 0;
}

static int step_text(struct sasl_server *sasl, const char *text, const char **chal_r,
                     const char **err_r)
{
	return step_raw(sasl, text, strlen(text), chal_r, err_r);
}

/* Decoded challenge, malloc'd and NUL-terminated. */
static char *unb64(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(base64_decoded_max(len) + 1);
	ssize_t n = base64_decode(text, len, (unsigned char *)out, base64_decoded_max(len));
	assert_true(n >= 0);
	out[n] = '\0';
	return out;
}

static void assert_challenge(const char *chal, const char *text)
{
	char *decoded = unb64(chal);
	assert_string_equal(decoded, text);
	free(decoded);
}

/* Run a SCRAM exchange up to server-first (nonce forced to RFC_SNONCE); keys NULL = none.
 * Returns the exchange and the decoded server-first in *server_first_r (malloc'd). */
static struct sasl_server *scram_begin(const char *client_first, const struct password_scram *keys,
                                       char **server_first_r)
{
	const char *chal, *err;
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	sasl_server_set_test_nonce(sasl, RFC_SNONCE);
	assert_int_equal(step_text(sasl, client_first, &chal, &err), 2);
	assert_int_equal(sasl_server_outcome(sasl), -1);
	sasl_server_set_credentials(sasl, keys);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	*server_first_r = unb64(chal);
	return sasl;
}

/* Value of attribute a ("s=") in a SCRAM message, malloc'd. */
static char *attr(const char *msg, const char *a)
{
	const char *p = strstr(msg, a);
	assert_non_null(p);
	p += strlen(a);
	return strndup(p, strcspn(p, ","));
}

static void hmac256(const unsigned char *key, size_t key_len, const char *msg, unsigned char *out)
{
	unsigned len;
	assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg,
	                     strlen(msg), out, &len));
}

/* The client's side (RFC 5802 §3): client-final for password after server_first, with
 * the GS2 header gs2 and client-first-bare bare. *verifier_r gets the expected
 * server-final text (malloc'd) when not NULL. */
static char *scram_client_final(const char *gs2, const char *bare, const char *server_first,
                                const char *password, char **verifier_r)
{
	char *nonce = attr(server_first, "r="), *salt_b64 = attr(server_first, ",s=");
	char *iter = attr(server_first, ",i=");
	unsigned char salt[64], salted[32], ck[32], sk[32], sig[32], proof[32], svk[32];
	ssize_t salt_len = base64_decode(salt_b64, strlen(salt_b64), salt, sizeof(salt));
	assert_true(salt_len > 0);
	assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
	                                   (int)strtoul(iter, NULL, 10), EVP_sha256(), 32, salted),
	                 1);
	hmac256(salted, 32, "Client Key", ck);
	assert_int_equal(EVP_Digest(ck, 32, sk, NULL, EVP_sha256(), NULL), 1);
	char *cb = base64_encode_dup((const unsigned char *)gs2, strlen(gs2));
	char without[1024], auth_msg[4096], final[1200];
	snprintf(without, sizeof(without), "c=%s,r=%s", cb, nonce);
	snprintf(auth_msg, sizeof(auth_msg), "%s,%s,%s", bare, server_first, without);
	hmac256(sk, 32, auth_msg, sig);
	for (int i = 0; i < 32; i++)
		proof[i] = ck[i] ^ sig[i];
	char *p = base64_encode_dup(proof, 32);
	snprintf(final, sizeof(final), "%s,p=%s", without, p);
	if (verifier_r != NULL) {
		hmac256(salted, 32, "Server Key", svk);
		hmac256(svk, 32, auth_msg, sig);
		char *v = base64_encode_dup(sig, 32);
		char text[64];
		snprintf(text, sizeof(text), "v=%s", v);
		*verifier_r = strdup(text);
		free(v);
	}
	free(p);
	free(cb);
	free(nonce);
	free(salt_b64);
	free(iter);
	return strdup(final);
}

/* A whole exchange: 1 proved, 0 failed at the end (asserts the steps' shape). */
static int scram_run(const char *gs2, const char *bare, const struct password_scram *keys,
                     const char *password)
{
	char client_first[1024];
	const char *chal, *err;
	snprintf(client_first, sizeof(client_first), "%s%s", gs2, bare);
	char *server_first;
	struct sasl_server *sasl = scram_begin(client_first, keys, &server_first);
	char *verifier;
	char *final = scram_client_final(gs2, bare, server_first, password, &verifier);
	int ret = step_text(sasl, final, &chal, &err);
	int outcome;
	if (ret == 0) {
		assert_challenge(chal, verifier);
		assert_int_equal(sasl_server_outcome(sasl), 1);
		assert_int_equal(sasl_server_step(sasl, "", &chal, &err), 1);
		outcome = sasl_server_outcome(sasl);
		assert_int_equal(outcome, 1);
	} else {
		assert_int_equal(ret, 1);
		assert_string_equal(chal, "");
		outcome = sasl_server_outcome(sasl);
		assert_int_equal(outcome, 0);
	}
	assert_int_equal(sasl_server_step(sasl, "", &chal, &err), -1); /* over */
	free(final);
	free(verifier);
	free(server_first);
	sasl_server_free(&sasl);
	return outcome;
}

static void test_scram_rfc7677(void **state)
{
	(void)state;
	const char *chal, *err;
	char *b64;

	/* With initial response. */
	char *server_first;
	struct sasl_server *sasl = scram_begin(RFC_CLIENT_FIRST, &rfc_keys, &server_first);
	assert_string_equal(sasl_server_username(sasl), "user");
	assert_string_equal(server_first, RFC_SERVER_FIRST);
	free(server_first);
	b64 = base64_encode_dup((const unsigned char *)RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL));
	assert_int_equal(sasl_server_step(sasl, b64, &chal, &err), 0);
	free(b64);
	assert_challenge(chal, RFC_SERVER_FINAL);
	assert_int_equal(sasl_server_outcome(sasl), 1);
	assert_int_equal(sasl_server_step(sasl, "", &chal, &err), 1);
	assert_string_equal(chal, "");
	assert_int_equal(sasl_server_outcome(sasl), 1);
	assert_int_equal(sasl_server_step(sasl, "", &chal, &err), -1);
	assert_string_equal(err, "exchange already finished");
	sasl_server_free(&sasl);

	/* Without initial response: an empty challenge first (RFC 4422 §5). */
	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	sasl_server_set_test_nonce(sasl, RFC_SNONCE);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_string_equal(chal, "");
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), -1); /* no answer */
	sasl_server_free(&sasl);

	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	sasl_server_set_test_nonce(sasl, RFC_SNONCE);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(step_text(sasl, RFC_CLIENT_FIRST, &chal, &err), 2);
	sasl_server_set_credentials(sasl, &rfc_keys);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_challenge(chal, RFC_SERVER_FIRST);
	assert_int_equal(step_text(sasl, RFC_CLIENT_FINAL, &chal, &err), 0);
	assert_challenge(chal, RFC_SERVER_FINAL);
	assert_int_equal(sasl_server_step(sasl, "", &chal, &err), 1);
	assert_int_equal(sasl_server_outcome(sasl), 1);
	sasl_server_free(&sasl);

	/* The client helper agrees with the RFC. */
	assert_int_equal(scram_run("n,,", "n=user,r=" RFC_CNONCE, &rfc_keys, "pencil"), 1);
}

static void test_scram_random_nonce(void **state)
{
	(void)state;
	const char *chal, *err;
	char *first[2];
	for (int i = 0; i < 2; i++) {
		struct sasl_server *sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
		assert_int_equal(step_text(sasl, RFC_CLIENT_FIRST, &chal, &err), 2);
		sasl_server_set_credentials(sasl, &rfc_keys);
		assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
		first[i] = unb64(chal);
		sasl_server_free(&sasl);
		/* "r=" client nonce + 24 base64 characters of ours. */
		char *nonce = attr(first[i], "r=");
		assert_int_equal(strlen(nonce), strlen(RFC_CNONCE) + 24);
		assert_memory_equal(nonce, RFC_CNONCE, strlen(RFC_CNONCE));
		free(nonce);
	}
	assert_string_not_equal(first[0], first[1]);
	free(first[0]);
	free(first[1]);
}

static void test_scram_wrong_password(void **state)
{
	(void)state;
	assert_int_equal(scram_run("n,,", "n=user,r=abcdef", &rfc_keys, "pencil2"), 0);
	assert_int_equal(scram_run("n,,", "n=user,r=abcdef", &rfc_keys, "Pencil"), 0);
	assert_int_equal(scram_run("n,,", "n=user,r=abcdef", &rfc_keys, ""), 0);

	/* The RFC proof with one bit flipped. */
	const char *chal, *err;
	char *server_first;
	struct sasl_server *sasl = scram_begin(RFC_CLIENT_FIRST, &rfc_keys, &server_first);
	free(server_first);
	char final[] = RFC_CLIENT_FINAL;
	final[strlen(final) - 3] ^= 1; /* "...AndVQ=": 'V' → 'W' */
	assert_int_equal(step_text(sasl, final, &chal, &err), 1);
	assert_string_equal(chal, "");
	assert_int_equal(sasl_server_outcome(sasl), 0);
	sasl_server_free(&sasl);
}

static void test_scram_unknown_user(void **state)
{
	(void)state;
	char *known, *unknown, *again, *upper, *other;
	struct sasl_server *a = scram_begin("n,,n=user,r=abc", &rfc_keys, &known);
	struct sasl_server *b = scram_begin("n,,n=nobody,r=abc", NULL, &unknown);
	struct sasl_server *c = scram_begin("n,,n=nobody,r=abc", NULL, &again);
	struct sasl_server *d = scram_begin("n,,n=NoBody,r=abc", NULL, &upper);
	struct sasl_server *e = scram_begin("n,,n=nobody2,r=abc", NULL, &other);
	/* Same shape: nonce, a 16-byte salt, 4096 iterations. */
	assert_int_equal(strlen(unknown), strlen(known));
	assert_memory_equal(unknown, known, strlen("r=abc") + strlen(RFC_SNONCE) + 3);
	assert_string_equal(unknown + strlen(unknown) - 7, ",i=4096");
	assert_string_not_equal(unknown, known);
	/* Stable per user name (case-insensitively), different between names. */
	assert_string_equal(unknown, again);
	assert_string_equal(unknown, upper);
	assert_string_not_equal(unknown, other);
	struct sasl_server *all[] = {a, b, c, d, e};
	for (size_t i = 0; i < 5; i++)
		sasl_server_free(&all[i]);
	free(known);
	free(unknown);
	free(again);
	free(upper);
	free(other);

	/* The exchange runs to its end and fails there, whatever the password. */
	assert_int_equal(scram_run("n,,", "n=nobody,r=abc", NULL, "pencil"), 0);
	assert_int_equal(scram_run("n,,", "n=user,r=abc", NULL, "pencil"), 0);
}

static void test_scram_gs2(void **state)
{
	(void)state;
	const char *chal, *err;
	/* "y": the client could bind but thinks we cannot, and we offer no -PLUS: fine. */
	assert_int_equal(scram_run("y,,", "n=user,r=abc", &rfc_keys, "pencil"), 1);

	/* "p=": channel binding is refused at once. */
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(step_text(sasl, "p=tls-unique,,n=user,r=abc", &chal, &err), -1);
	assert_string_equal(err, "SCRAM channel binding not supported");
	sasl_server_free(&sasl);

	/* The channel-binding data must repeat the GS2 header exactly. */
	char *server_first;
	sasl = scram_begin("y,,n=user,r=abc", &rfc_keys, &server_first);
	char *final = scram_client_final("n,,", "n=user,r=abc", server_first, "pencil", NULL);
	assert_int_equal(step_text(sasl, final, &chal, &err), -1);
	assert_string_equal(err, "SCRAM channel binding data mismatch");
	assert_int_equal(sasl_server_outcome(sasl), -1);
	free(final);
	free(server_first);
	sasl_server_free(&sasl);
}

static void test_scram_authzid(void **state)
{
	(void)state;
	assert_int_equal(scram_run("n,a=user,", "n=user,r=abc", &rfc_keys, "pencil"), 1);
	assert_int_equal(scram_run("n,a=USER,", "n=user,r=abc", &rfc_keys, "pencil"), 1);
	/* Proxy authorization is not supported: right password, failure at the end. */
	assert_int_equal(scram_run("n,a=other,", "n=user,r=abc", &rfc_keys, "pencil"), 0);
	assert_int_equal(scram_run("y,a=u=2Cser,", "n=user,r=abc", &rfc_keys, "pencil"), 0);
}

static void test_scram_names(void **state)
{
	(void)state;
	const char *chal, *err;
	char *server_first;
	struct sasl_server *sasl = scram_begin("n,,n=u=2Cs=3Der,r=abc", NULL, &server_first);
	assert_string_equal(sasl_server_username(sasl), "u,s=er");
	free(server_first);
	sasl_server_free(&sasl);

	sasl = scram_begin("n,,n=j\xc3\xb6rg,r=abc", NULL, &server_first);
	assert_string_equal(sasl_server_username(sasl), "j\xc3\xb6rg");
	free(server_first);
	sasl_server_free(&sasl);

	/* 255 octets is the longest name, escapes counting as one. */
	char msg[1200], name[800];
	memset(name, 'a', 255);
	name[255] = '\0';
	snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
	sasl = scram_begin(msg, NULL, &server_first);
	free(server_first);
	sasl_server_free(&sasl);
	for (int i = 0; i < 255; i++)
		memcpy(name + 3 * i, "=2C", 3);
	name[765] = '\0';
	snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
	sasl = scram_begin(msg, NULL, &server_first);
	free(server_first);
	sasl_server_free(&sasl);
	memset(name, 'a', 256);
	name[256] = '\0';
	snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(step_text(sasl, msg, &chal, &err), -1);
	assert_string_equal(err, "field longer than 255 octets");
	sasl_server_free(&sasl);

	/* Nonces: 128 characters at most. */
	memset(name, 'x', 129);
	name[128] = '\0';
	snprintf(msg, sizeof(msg), "n,,n=user,r=%s", name);
	sasl = scram_begin(msg, NULL, &server_first);
	free(server_first);
	sasl_server_free(&sasl);
	name[128] = 'x';
	name[129] = '\0';
	snprintf(msg, sizeof(msg), "n,,n=user,r=%s", name);
	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(step_text(sasl, msg, &chal, &err), -1);
	assert_string_equal(err, "malformed SCRAM nonce");
	sasl_server_free(&sasl);
}

static void test_scram_first_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		const char *error;
	} bad[] = {
	    {"", "empty SCRAM message"},
	    {"x,,n=user,r=abc", "malformed SCRAM GS2 header"},
	    {"n,n=user,r=abc", "malformed SCRAM GS2 header"},
	    {"n,b=user,n=user,r=abc", "malformed SCRAM GS2 header"},
	    {"n,a=user,,n=user,r=abc", "SCRAM user name missing"},
	    {"p,,n=user,r=abc", "malformed SCRAM GS2 header"},
	    {"n,a=,n=user,r=abc", "empty SCRAM user name"},
	    {"n,,r=abc", "SCRAM user name missing"},
	    {"n,,n=,r=abc", "empty SCRAM user name"},
	    {"n,,n=us=2Xer,r=abc", "bad escape in SCRAM user name"},
	    {"n,,n=us=2cer,r=abc", "bad escape in SCRAM user name"},
	    {"n,,n=user=,r=abc", "bad escape in SCRAM user name"},
	    {"n,,n=user=2,r=abc", "bad escape in SCRAM user name"},
	    {"n,,n=us\ter,r=abc", "identity is not valid UTF-8 text"},
	    {"n,,n=us\xffr,r=abc", "identity is not valid UTF-8 text"},
	    {"n,,n=user", "SCRAM nonce missing"},
	    {"n,,n=user,s=abc", "SCRAM nonce missing"},
	    {"n,,n=user,r=", "malformed SCRAM nonce"},
	    {"n,,n=user,r=a b", "malformed SCRAM nonce"},
	    {"n,,n=user,r=ab\x7f", "malformed SCRAM nonce"},
	    {"n,,n=user,r=ab\xc3\xa9", "malformed SCRAM nonce"},
	    {"n,,m=ext,n=user,r=abc", "SCRAM mandatory extension not supported"},
	    {"n,,n=user,r=abc,x=ext", "SCRAM extensions not supported"},
	    {"n,,n=user,r=abc,", "SCRAM extensions not supported"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *chal, *err;
		struct sasl_server *sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
		assert_int_equal(step_text(sasl, bad[i].msg, &chal, &err), -1);
		assert_string_equal(err, bad[i].error);
		assert_string_equal(chal, "");
		assert_int_equal(sasl_server_outcome(sasl), -1);
		sasl_server_free(&sasl);
	}

	const char *chal, *err;
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(step_raw(sasl, "n,,n=us\0er,r=abc", 16, &chal, &err), -1);
	assert_string_equal(err, "NUL inside a SCRAM message");
	sasl_server_free(&sasl);
	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_step(sasl, "=", &chal, &err), -1);
	assert_string_equal(err, "empty SCRAM message");
	sasl_server_free(&sasl);
	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_step(sasl, "biws", &chal, &err), -1); /* "n,," */
	sasl_server_free(&sasl);
	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_step(sasl, "biwsbj1", &chal, &err), -1);
	assert_string_equal(err, "malformed base64");
	sasl_server_free(&sasl);

	/* Over the 2048-octet cap, and the caller's smaller cap. */
	char big[2100];
	memset(big, 'x', sizeof(big));
	memcpy(big, "n,,n=user,r=", 12);
	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(step_raw(sasl, big, 2049, &chal, &err), -1);
	assert_string_equal(err, "response too long");
	sasl_server_free(&sasl);
	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 10);
	assert_int_equal(step_text(sasl, "n,,n=user,r=abc", &chal, &err), -1);
	assert_string_equal(err, "response too long");
	sasl_server_free(&sasl);
}

static void test_scram_final_malformed(void **state)
{
	(void)state;
	const char *nonce = RFC_CNONCE RFC_SNONCE;
	const char *proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
	char bad[12][256];
	static const char *const errors[] = {
	    "SCRAM channel binding data mismatch",
	    "SCRAM channel binding data mismatch",
	    "SCRAM nonce mismatch",
	    "SCRAM nonce mismatch",
	    "SCRAM nonce mismatch",
	    "SCRAM proof missing",
	    "SCRAM extensions not supported",
	    "malformed SCRAM proof",
	    "malformed SCRAM proof",
	    "malformed SCRAM proof",
	    "SCRAM channel binding data mismatch",
	    "empty SCRAM message",
	};
	snprintf(bad[0], 256, "r=%s,p=%s", nonce, proof);
	snprintf(bad[1], 256, "c=eSws,r=%s,p=%s", nonce, proof);
	snprintf(bad[2], 256, "c=biws,r=%s,p=%s", RFC_CNONCE, proof);
	snprintf(bad[3], 256, "c=biws,r=%sX,p=%s", nonce, proof);
	snprintf(bad[4], 256, "c=biws,p=%s", proof);
	snprintf(bad[5], 256, "c=biws,r=%s", nonce);
	snprintf(bad[6], 256, "c=biws,r=%s,x=1,p=%s", nonce, proof);
	snprintf(bad[7], 256, "c=biws,r=%s,p=%s,x=1", nonce, proof);
	snprintf(bad[8], 256, "c=biws,r=%s,p=AAAA", nonce);
	snprintf(bad[9], 256, "c=biws,r=%s,p=", nonce);
	snprintf(bad[10], 256, "c=biwsx,r=%s,p=%s", nonce, proof);
	bad[11][0] = '\0';
	for (size_t i = 0; i < 12; i++) {
		const char *chal, *err;
		char *server_first;
		struct sasl_server *sasl = scram_begin(RFC_CLIENT_FIRST, &rfc_keys, &server_first);
		free(server_first);
		assert_int_equal(step_text(sasl, bad[i], &chal, &err), -1);
		assert_string_equal(err, errors[i]);
		assert_int_equal(sasl_server_outcome(sasl), -1);
		sasl_server_free(&sasl);
	}
}

static void test_scram_cancel_and_order(void **state)
{
	(void)state;
	const char *chal, *err;
	char *server_first;
	/* "*" as the initial response, as the client-first, the client-final, the last. */
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_step(sasl, "*", &chal, &err), -1);
	assert_string_equal(err, "cancelled by client");
	sasl_server_free(&sasl);

	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "*", &chal, &err), -1);
	sasl_server_free(&sasl);

	sasl = scram_begin(RFC_CLIENT_FIRST, &rfc_keys, &server_first);
	free(server_first);
	assert_int_equal(sasl_server_step(sasl, "*", &chal, &err), -1);
	assert_string_equal(err, "cancelled by client");
	assert_int_equal(sasl_server_step(sasl, "", &chal, &err), -1);
	sasl_server_free(&sasl);

	sasl = scram_begin(RFC_CLIENT_FIRST, &rfc_keys, &server_first);
	free(server_first);
	assert_int_equal(step_text(sasl, RFC_CLIENT_FINAL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "*", &chal, &err), -1);
	assert_string_equal(err, "cancelled by client");
	assert_int_equal(sasl_server_outcome(sasl), -1); /* no longer a success */
	sasl_server_free(&sasl);

	/* After server-final only an empty response is right. */
	sasl = scram_begin(RFC_CLIENT_FIRST, &rfc_keys, &server_first);
	free(server_first);
	assert_int_equal(step_text(sasl, RFC_CLIENT_FINAL, &chal, &err), 0);
	assert_int_equal(sasl_server_step(sasl, "AAAA", &chal, &err), -1);
	assert_string_equal(err, "SCRAM response after server-final not empty");
	sasl_server_free(&sasl);

	/* A response while the keys are awaited is a protocol error; so is a missing one. */
	sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(step_text(sasl, RFC_CLIENT_FIRST, &chal, &err), 2);
	assert_int_equal(sasl_server_step(sasl, "biws", &chal, &err), -1);
	assert_string_equal(err, "SCRAM response before server-first");
	sasl_server_free(&sasl);

	sasl = scram_begin(RFC_CLIENT_FIRST, &rfc_keys, &server_first);
	free(server_first);
	assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), -1);
	assert_string_equal(err, "missing response");
	sasl_server_free(&sasl);

	/* PLAIN and LOGIN give no verdict of their own. */
	sasl = sasl_server_new(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(sasl, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &chal, &err), 1);
	assert_int_equal(sasl_server_outcome(sasl), -1);
	sasl_server_free(&sasl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mech_names),
	    cmocka_unit_test(test_plain_initial),
	    cmocka_unit_test(test_plain_no_initial),
	    cmocka_unit_test(test_plain_authzid),
	    cmocka_unit_test(test_plain_empty_fields),
	    cmocka_unit_test(test_plain_missing_nul),
	    cmocka_unit_test(test_plain_too_long),
	    cmocka_unit_test(test_plain_bad_base64),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_empty_response),
	    cmocka_unit_test(test_login),
	    cmocka_unit_test(test_login_bad),
	    cmocka_unit_test(test_scram_rfc7677),
	    cmocka_unit_test(test_scram_random_nonce),
	    cmocka_unit_test(test_scram_wrong_password),
	    cmocka_unit_test(test_scram_unknown_user),
	    cmocka_unit_test(test_scram_gs2),
	    cmocka_unit_test(test_scram_authzid),
	    cmocka_unit_test(test_scram_names),
	    cmocka_unit_test(test_scram_first_malformed),
	    cmocka_unit_test(test_scram_final_malformed),
	    cmocka_unit_test(test_scram_cancel_and_order),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
