/* SASL PLAIN and LOGIN, server side (see sasl.h). A small state machine per exchange: it
 * decodes each base64 response into a scratch buffer, splits and checks the fields, keeps
 * NUL-terminated copies of the credentials, and wipes every buffer that held a secret. */
#include "auth/sasl.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* Largest PLAIN message: authzid NUL authcid NUL passwd (RFC 4616 §2). */
#define SASL_PLAIN_MAX (3 * SASL_FIELD_MAX + 2)

#define SASL_CHALLENGE_USERNAME "VXNlcm5hbWU6" /* "Username:" */
#define SASL_CHALLENGE_PASSWORD "UGFzc3dvcmQ6" /* "Password:" */

enum sasl_state {
	SASL_STATE_START,      /* nothing received yet: the next response is the initial one */
	SASL_STATE_WAIT_PLAIN, /* PLAIN: sent "", waiting for the message */
	SASL_STATE_WAIT_USER,  /* LOGIN: sent "Username:" */
	SASL_STATE_WAIT_PASS,  /* LOGIN: sent "Password:" */
	SASL_STATE_DONE,       /* credentials complete */
	SASL_STATE_FAILED,     /* malformed or cancelled */
};

struct sasl_server {
	enum sasl_mech mech;
	enum sasl_state state;
	size_t max_len;
	char *authzid; /* malloc'd, NUL-terminated, wiped on free; NULL until known */
	char *authcid;
	char *password;
};

/* A decoded client response: data[0..len) in a buffer of cap bytes, wiped on release. */
struct sasl_response {
	unsigned char *data;
	size_t len;
	size_t cap;
};

static const struct {
	const char *name;
	enum sasl_mech mech;
} sasl_mechs[] = {
    {"PLAIN", SASL_MECH_PLAIN},
    {"LOGIN", SASL_MECH_LOGIN},
};

int sasl_mech_parse(const char *name, enum sasl_mech *mech_r)
{
	for (size_t i = 0; i < sizeof(sasl_mechs) / sizeof(sasl_mechs[0]); i++) {
		if (strcasecmp(name, sasl_mechs[i].name) == 0) {
			*mech_r = sasl_mechs[i].mech;
			return 0;
		}
	}
	return -1;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
	for (size_t i = 0; i < sizeof(sasl_mechs) / sizeof(sasl_mechs[0]); i++) {
		if (sasl_mechs[i].mech == mech)
			return sasl_mechs[i].name;
	}
	log_panic("sasl_mech_name: unknown mechanism %d", (int)mech);
}

const char *sasl_mech_list(void)
{
	return "PLAIN LOGIN";
}

struct sasl_server *sasl_server_new(enum sasl_mech mech, size_t max_len)
{
	ASSERT(mech == SASL_MECH_PLAIN || mech == SASL_MECH_LOGIN);
	struct sasl_server *sasl = xcalloc(1, sizeof(*sasl));
	sasl->mech = mech;
	sasl->state = SASL_STATE_START;
	/* No valid response is longer than a full PLAIN message; a smaller cap is the caller's. */
	sasl->max_len = max_len == 0 || max_len > SASL_PLAIN_MAX ? SASL_PLAIN_MAX : max_len;
	return sasl;
}

static void sasl_wipe_str(char **s)
{
	if (*s == NULL)
		return;
	xmemzero(*s, strlen(*s));
	free(*s);
	*s = NULL;
}

void sasl_server_free(struct sasl_server **sasl)
{
	if (*sasl == NULL)
		return;
	sasl_wipe_str(&(*sasl)->authzid);
	sasl_wipe_str(&(*sasl)->authcid);
	sasl_wipe_str(&(*sasl)->password);
	xmemzero(*sasl, sizeof(**sasl));
	free(*sasl);
	*sasl = NULL;
}

static void sasl_response_release(struct sasl_response *resp)
{
	if (resp->data != NULL) {
		xmemzero(resp->data, resp->cap);
		free(resp->data);
	}
	resp->data = NULL;
	resp->len = resp->cap = 0;
}

/* Decode one response into resp. Returns 1 decoded, 0 cancelled ("*"), -1 bad (*error_r). */
static int sasl_response_decode(const struct sasl_server *sasl, const char *text, bool initial,
                                struct sasl_response *resp, const char **error_r)
{
	resp->data = NULL;
	resp->len = resp->cap = 0;
	if (strcmp(text, "*") == 0)
		return 0;
	if (initial && strcmp(text, "=") == 0)
		return 1; /* empty initial response (RFC 4954 §4) */
	/* Refuse over-long text before touching it further; strnlen bounds the scan. */
	size_t limit = base64_encoded_len(sasl->max_len);
	size_t len = strnlen(text, limit + 1);
	if (len > limit) {
		*error_r = "response too long";
		return -1;
	}
	resp->cap = base64_decoded_max(len) + 1;
	resp->data = xmalloc(resp->cap);
	ssize_t n = base64_decode(text, len, resp->data, resp->cap);
	if (n < 0) {
		sasl_response_release(resp);
		*error_r = "malformed base64";
		return -1;
	}
	if ((size_t)n > sasl->max_len) {
		sasl_response_release(resp);
		*error_r = "response too long";
		return -1;
	}
	resp->len = (size_t)n;
	return 1;
}

/* Length of the UTF-8 sequence starting at p (at most n bytes available), or 0 when it is
 * malformed: overlong, surrogate, above U+10FFFF or truncated (RFC 3629 §4). */
static size_t sasl_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp_r)
{
	size_t len;
	uint32_t cp, min;
	if (p[0] < 0x80) {
		*cp_r = p[0];
		return 1;
	} else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2, cp = p[0] & 0x1f, min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3, cp = p[0] & 0x0f, min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4, cp = p[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

/* An identity (authzid, authcid, LOGIN user name) is valid UTF-8 without C0/C1 control
 * characters or DEL: it is compared, looked up and logged. */
static bool sasl_identity_valid(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = sasl_utf8_seq(p + i, n - i, &cp);
		if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return false;
		i += len;
	}
	return true;
}

/* Check one field: min_len..SASL_FIELD_MAX octets, no NUL, and identity rules if asked. */
static int sasl_field_check(const unsigned char *p, size_t n, size_t min_len, bool identity,
                            const char *what_empty, const char **error_r)
{
	if (n < min_len) {
		*error_r = what_empty;
		return -1;
	}
	if (n > SASL_FIELD_MAX) {
		*error_r = "field longer than 255 octets";
		return -1;
	}
	if (memchr(p, '\0', n) != NULL) {
		*error_r = "NUL inside a field";
		return -1;
	}
	if (identity && !sasl_identity_valid(p, n)) {
		*error_r = "identity is not valid UTF-8 text";
		return -1;
	}
	return 0;
}

/* RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd. */
static int sasl_plain_parse(struct sasl_server *sasl, const struct sasl_response *resp,
                            const char **error_r)
{
	const unsigned char *msg = resp->data, *end = resp->data + resp->len;
	const unsigned char *nul1 = resp->len == 0 ? NULL : memchr(msg, '\0', resp->len);
	if (nul1 == NULL) {
		*error_r = "PLAIN message without NUL separator";
		return -1;
	}
	const unsigned char *authcid = nul1 + 1;
	const unsigned char *nul2 = memchr(authcid, '\0', (size_t)(end - authcid));
	if (nul2 == NULL) {
		*error_r = "PLAIN message without second NUL separator";
		return -1;
	}
	const unsigned char *passwd = nul2 + 1;
	size_t authzid_len = (size_t)(nul1 - msg), authcid_len = (size_t)(nul2 - authcid);
	size_t passwd_len = (size_t)(end - passwd);
	if (sasl_field_check(msg, authzid_len, 0, true, NULL, error_r) < 0 ||
	    sasl_field_check(authcid, authcid_len, 1, true, "empty authentication identity",
	                     error_r) < 0 ||
	    sasl_field_check(passwd, passwd_len, 1, false, "empty password", error_r) < 0)
		return -1;
	sasl->authzid = xstrndup((const char *)msg, authzid_len);
	sasl->authcid = xstrndup((const char *)authcid, authcid_len);
	sasl->password = xstrndup((const char *)passwd, passwd_len);
	return 1;
}

static int sasl_plain_step(struct sasl_server *sasl, const char *text, const char **challenge_r,
                           const char **error_r)
{
	if (text == NULL) {
		if (sasl->state != SASL_STATE_START) {
			*error_r = "missing response";
			return -1;
		}
		sasl->state = SASL_STATE_WAIT_PLAIN;
		*challenge_r = ""; /* RFC 4616 §2: empty challenge, client sends the message */
		return 0;
	}
	struct sasl_response resp;
	int ret = sasl_response_decode(sasl, text, sasl->state == SASL_STATE_START, &resp, error_r);
	if (ret == 0) {
		*error_r = "cancelled by client";
		return -1;
	}
	if (ret > 0)
		ret = sasl_plain_parse(sasl, &resp, error_r);
	sasl_response_release(&resp);
	return ret;
}

/* LOGIN: take the user name (WAIT_USER) or the password (WAIT_PASS) from one response. */
static int sasl_login_field(struct sasl_server *sasl, const char *text, bool initial,
                            const char **error_r)
{
	bool user = sasl->state == SASL_STATE_WAIT_USER || sasl->state == SASL_STATE_START;
	struct sasl_response resp;
	int ret = sasl_response_decode(sasl, text, initial, &resp, error_r);
	if (ret == 0) {
		*error_r = "cancelled by client";
		return -1;
	}
	if (ret > 0)
		ret = sasl_field_check(resp.data, resp.len, 1, user,
		                       user ? "empty user name" : "empty password", error_r);
	if (ret == 0) {
		char *copy = xstrndup((const char *)resp.data, resp.len);
		if (user)
			sasl->authcid = copy;
		else
			sasl->password = copy;
	}
	sasl_response_release(&resp);
	return ret;
}

static int sasl_login_step(struct sasl_server *sasl, const char *text, const char **challenge_r,
                           const char **error_r)
{
	if (text == NULL) {
		if (sasl->state != SASL_STATE_START) {
			*error_r = "missing response";
			return -1;
		}
		sasl->state = SASL_STATE_WAIT_USER;
		*challenge_r = SASL_CHALLENGE_USERNAME;
		return 0;
	}
	if (sasl_login_field(sasl, text, sasl->state == SASL_STATE_START, error_r) < 0)
		return -1;
	if (sasl->state == SASL_STATE_WAIT_PASS) {
		sasl->authzid = xstrdup("");
		return 1;
	}
	sasl->state = SASL_STATE_WAIT_PASS;
	*challenge_r = SASL_CHALLENGE_PASSWORD;
	return 0;
}

int sasl_server_step(struct sasl_server *sasl, const char *response_b64, const char **challenge_r,
                     const char **error_r)
{
	int ret;

	*challenge_r = "";
	*error_r = NULL;
	if (sasl->state == SASL_STATE_DONE || sasl->state == SASL_STATE_FAILED) {
		*error_r = "exchange already finished";
		return -1;
	}
	if (sasl->mech == SASL_MECH_PLAIN)
		ret = sasl_plain_step(sasl, response_b64, challenge_r, error_r);
	else
		ret = sasl_login_step(sasl, response_b64, challenge_r, error_r);
	if (ret != 0) {
		*challenge_r = "";
		sasl->state = ret > 0 ? SASL_STATE_DONE : SASL_STATE_FAILED;
	}
	if (ret < 0) {
		/* Drop partial credentials (a LOGIN user name) so nothing half-valid remains. */
		sasl_wipe_str(&sasl->authzid);
		sasl_wipe_str(&sasl->authcid);
		sasl_wipe_str(&sasl->password);
	}
	return ret;
}

void sasl_server_credentials(struct sasl_server *sasl, const char **authzid_r,
                             const char **authcid_r, const char **password_r)
{
	ASSERT(sasl->state == SASL_STATE_DONE);
	*authzid_r = sasl->authzid;
	*authcid_r = sasl->authcid;
	*password_r = sasl->password;
}
