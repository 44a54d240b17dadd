/* Unit tests for auth/sasl: mechanism names, PLAIN with and without initial response, with
 * and without authzid, every malformed PLAIN message, cancel, the "=" empty response, and
 * the two LOGIN steps. Base64 responses are built with base64_encode_dup(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

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
	assert_int_equal(sasl_mech_parse("CRAM-MD5", &m), -1);
	assert_int_equal(sasl_mech_parse("", &m), -1);
	assert_int_equal(sasl_mech_parse("PLAINX", &m), -1);
	assert_string_equal(sasl_mech_list(), "PLAIN LOGIN");
	assert_string_equal(sasl_mech_name(SASL_MECH_LOGIN), "LOGIN");
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
