/* SASL SCRAM-SHA-256, PLAIN and LOGIN, server side (see sasl.h). A small state machine
 * per exchange: it decodes each base64 response into a scratch buffer, splits and checks
 * the fields, keeps NUL-terminated copies of what later steps need, and wipes every buffer
 * that held a secret. SCRAM's HMAC and hash come from OpenSSL; this file depends on no
 * other auth/ file at link time (the fuzz target links it alone). */
#include "auth/sasl.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* Largest PLAIN message: authzid NUL authcid NUL passwd (RFC 4616 §2). */
#define SASL_PLAIN_MAX (3 * SASL_FIELD_MAX + 2)
/* Largest SCRAM message: a client-first with an escaped authzid and user name (3 octets per
 * octet at worst) and the longest nonce stays well below this. */
#define SASL_SCRAM_MAX 2048
#define SASL_SCRAM_SNONCE_BYTES 18 /* random octets of our nonce part: 24 base64 characters */
#define SASL_SCRAM_TEST_NONCE_MAX 64

#define SASL_CHALLENGE_USERNAME "VXNlcm5hbWU6" /* "Username:" */
#define SASL_CHALLENGE_PASSWORD "UGFzc3dvcmQ6" /* "Password:" */

enum sasl_state {
	SASL_STATE_START,       /* nothing received yet: the next response is the initial one */
	SASL_STATE_WAIT_PLAIN,  /* PLAIN: sent "", waiting for the message */
	SASL_STATE_WAIT_USER,   /* LOGIN: sent "Username:" */
	SASL_STATE_WAIT_PASS,   /* LOGIN: sent "Password:" */
	SASL_STATE_SCRAM_FIRST, /* SCRAM: sent "", waiting for client-first */
	SASL_STATE_SCRAM_KEYS,  /* SCRAM: returned 2, waiting for sasl_server_set_credentials() */
	SASL_STATE_SCRAM_READY, /* SCRAM: keys set, the next step sends server-first */
	SASL_STATE_SCRAM_FINAL, /* SCRAM: sent server-first, waiting for client-final */
	SASL_STATE_SCRAM_ACK,   /* SCRAM: sent server-final, waiting for the empty response */
	SASL_STATE_DONE,        /* credentials complete, or SCRAM verdict given */
	SASL_STATE_FAILED,      /* malformed or cancelled */
};

/* What a SCRAM exchange remembers between steps (RFC 5802 §3: AuthMessage is made of
 * client-first-bare, server-first and client-final-without-proof). */
struct sasl_scram {
	char *username;     /* decoded authcid */
	char *authzid;      /* decoded, "" when none */
	char *gs2_header;   /* as sent, e.g. "n,," */
	char *client_first; /* client-first-message-bare, as sent */
	char *nonce;        /* the client's nonce, then the client's + ours */
	char *server_first; /* as sent */
	char *challenge;    /* base64 of the last challenge; owned */
	struct password_scram keys;
	bool have_keys;
	int outcome; /* -1 undecided, 0 failed, 1 proved */
	char test_nonce[SASL_SCRAM_TEST_NONCE_MAX + 1];
};

struct sasl_server {
	enum sasl_mech mech;
	enum sasl_state state;
	size_t max_len;
	char *authzid; /* malloc'd, NUL-terminated, wiped on free; NULL until known */
	char *authcid;
	char *password;
	struct sasl_scram *scram; /* SCRAM-SHA-256 only */
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
    {"SCRAM-SHA-256", SASL_MECH_SCRAM_SHA_256},
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
	return "SCRAM-SHA-256 PLAIN LOGIN";
}

struct sasl_server *sasl_server_new(enum sasl_mech mech, size_t max_len)
{
	ASSERT(mech == SASL_MECH_PLAIN || mech == SASL_MECH_LOGIN ||
	       mech == SASL_MECH_SCRAM_SHA_256);
	struct sasl_server *sasl = xcalloc(1, sizeof(*sasl));
	sasl->mech = mech;
	sasl->state = SASL_STATE_START;
	/* No valid response is longer than the mechanism's largest message; a smaller cap is
	 * the caller's. */
	size_t mech_max = mech == SASL_MECH_SCRAM_SHA_256 ? SASL_SCRAM_MAX : SASL_PLAIN_MAX;
	sasl->max_len = max_len == 0 || max_len > mech_max ? mech_max : max_len;
	if (mech == SASL_MECH_SCRAM_SHA_256) {
		sasl->scram = xcalloc(1, sizeof(*sasl->scram));
		sasl->scram->outcome = -1;
	}
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

static void sasl_scram_free(struct sasl_scram **scramp)
{
	struct sasl_scram *scram = *scramp;
	if (scram == NULL)
		return;
	sasl_wipe_str(&scram->username);
	sasl_wipe_str(&scram->authzid);
	sasl_wipe_str(&scram->gs2_header);
	sasl_wipe_str(&scram->client_first);
	sasl_wipe_str(&scram->nonce);
	sasl_wipe_str(&scram->server_first);
	sasl_wipe_str(&scram->challenge);
	xmemzero(scram, sizeof(*scram));
	free(scram);
	*scramp = NULL;
}

void sasl_server_free(struct sasl_server **sasl)
{
	if (*sasl == NULL)
		return;
	sasl_wipe_str(&(*sasl)->authzid);
	sasl_wipe_str(&(*sasl)->authcid);
	sasl_wipe_str(&(*sasl)->password);
	sasl_scram_free(&(*sasl)->scram);
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

/* ---- SCRAM-SHA-256 (RFC 5802, RFC 7677) ---- */

static pthread_once_t sasl_fake_once = PTHREAD_ONCE_INIT;
/* Per-process key for the fake salts of unknown users: set once, read-only afterwards. */
static unsigned char sasl_fake_secret[32];

static void sasl_fake_init(void)
{
	if (RAND_bytes(sasl_fake_secret, sizeof(sasl_fake_secret)) != 1)
		log_fatal("sasl: no random bytes for the SCRAM salt secret");
}

static void sasl_hmac(const unsigned char *key, size_t key_len, const void *msg, size_t msg_len,
                      unsigned char out[PASSWORD_SCRAM_KEY_LEN])
{
	unsigned len = 0;
	if (HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &len) == NULL ||
	    len != PASSWORD_SCRAM_KEY_LEN)
		log_panic("sasl: HMAC-SHA-256 failed");
}

/* Stable fake salt and the iteration count for a user without keys: HMAC of the
 * lower-cased name (the lookup is case-insensitive, so "Bob" and "bob" must match). */
static void sasl_scram_fake_keys(struct sasl_scram *scram)
{
	pthread_once(&sasl_fake_once, sasl_fake_init);
	char *lower = xstrdup(scram->username);
	for (char *p = lower; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	unsigned char mac[PASSWORD_SCRAM_KEY_LEN];
	sasl_hmac(sasl_fake_secret, sizeof(sasl_fake_secret), lower, strlen(lower), mac);
	free(lower);
	memset(&scram->keys, 0, sizeof(scram->keys));
	memcpy(scram->keys.salt, mac, PASSWORD_SCRAM_SALT_LEN);
	scram->keys.salt_len = PASSWORD_SCRAM_SALT_LEN;
	scram->keys.iterations = PASSWORD_SCRAM_ITERATIONS;
	/* Random keys: the proof check runs as usual and cannot match by accident. */
	if (RAND_bytes(scram->keys.stored_key, sizeof(scram->keys.stored_key)) != 1 ||
	    RAND_bytes(scram->keys.server_key, sizeof(scram->keys.server_key)) != 1)
		log_fatal("sasl: no random bytes");
}

/* RFC 5802 §7 saslname at *p, up to ',' or the end: "=2C" is ',', "=3D" is '=', any other
 * '=' is an error. Returns the malloc'd decoded name (a valid identity of
 * 1..SASL_FIELD_MAX octets) and advances *p, or NULL with *error_r. */
static char *sasl_scram_name(const char **p, const char **error_r)
{
	const char *s = *p;
	size_t n = strcspn(s, ",");
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '=') {
			out[o++] = s[i];
		} else if (i + 2 < n && s[i + 1] == '2' && s[i + 2] == 'C') {
			out[o++] = ',';
			i += 2;
		} else if (i + 2 < n && s[i + 1] == '3' && s[i + 2] == 'D') {
			out[o++] = '=';
			i += 2;
		} else {
			free(out);
			*error_r = "bad escape in SCRAM user name";
			return NULL;
		}
	}
	out[o] = '\0';
	if (sasl_field_check((const unsigned char *)out, o, 1, true, "empty SCRAM user name",
	                     error_r) < 0) {
		free(out);
		return NULL;
	}
	*p = s + n;
	return out;
}

/* RFC 5802 §7 printable: %x21-2B / %x2D-7E. */
static bool sasl_scram_nonce_char(char c)
{
	return c >= 0x21 && c <= 0x7e && c != ',';
}

/* gs2-header = gs2-cbind-flag "," [ authzid ] ","; only "n" and "y" (RFC 5802 §6: "y"
 * is fine because we offer no -PLUS mechanism). Advances *p past the header. */
static int sasl_scram_gs2(struct sasl_scram *scram, const char **p, const char **error_r)
{
	const char *s = *p;
	if (s[0] == 'p' && s[1] == '=') {
		*error_r = "SCRAM channel binding not supported";
		return -1;
	}
	if ((s[0] != 'n' && s[0] != 'y') || s[1] != ',') {
		*error_r = "malformed SCRAM GS2 header";
		return -1;
	}
	s += 2;
	if (s[0] == 'a' && s[1] == '=') {
		s += 2;
		scram->authzid = sasl_scram_name(&s, error_r);
		if (scram->authzid == NULL)
			return -1;
	} else {
		scram->authzid = xstrdup("");
	}
	if (*s != ',') {
		*error_r = "malformed SCRAM GS2 header";
		return -1;
	}
	s++;
	scram->gs2_header = xstrndup(*p, (size_t)(s - *p));
	*p = s;
	return 0;
}

/* client-first-message = gs2-header "n=" saslname ",r=" c-nonce (RFC 5802 §7). The
 * reserved "m=" and every other extension are refused. */
static int sasl_scram_client_first(struct sasl_scram *scram, const char *msg, const char **error_r)
{
	const char *p = msg;
	if (sasl_scram_gs2(scram, &p, error_r) < 0)
		return -1;
	scram->client_first = xstrdup(p);
	if (p[0] == 'm' && p[1] == '=') {
		*error_r = "SCRAM mandatory extension not supported";
		return -1;
	}
	if (p[0] != 'n' || p[1] != '=') {
		*error_r = "SCRAM user name missing";
		return -1;
	}
	p += 2;
	scram->username = sasl_scram_name(&p, error_r);
	if (scram->username == NULL)
		return -1;
	if (strncmp(p, ",r=", 3) != 0) {
		*error_r = "SCRAM nonce missing";
		return -1;
	}
	p += 3;
	size_t n = 0;
	while (sasl_scram_nonce_char(p[n]))
		n++;
	if (p[n] == ',') {
		*error_r = "SCRAM extensions not supported";
		return -1;
	}
	if (n == 0 || n > SASL_SCRAM_NONCE_MAX || p[n] != '\0') {
		*error_r = "malformed SCRAM nonce";
		return -1;
	}
	scram->nonce = xstrndup(p, n);
	return 0;
}

/* Decode a SCRAM message (any response but the final empty one): text without NUL. */
static char *sasl_scram_text(const struct sasl_response *resp, const char **error_r)
{
	if (resp->len == 0) {
		*error_r = "empty SCRAM message";
		return NULL;
	}
	if (memchr(resp->data, '\0', resp->len) != NULL) {
		*error_r = "NUL inside a SCRAM message";
		return NULL;
	}
	return xstrndup((const char *)resp->data, resp->len);
}

/* server-first-message = "r=" c-nonce s-nonce ",s=" salt ",i=" iteration-count. */
static void sasl_scram_server_first(struct sasl_scram *scram)
{
	if (!scram->have_keys)
		sasl_scram_fake_keys(scram);
	char *snonce;
	if (scram->test_nonce[0] != '\0') {
		snonce = xstrdup(scram->test_nonce);
	} else {
		unsigned char raw[SASL_SCRAM_SNONCE_BYTES];
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			log_fatal("sasl: no random bytes for the SCRAM nonce");
		snonce = base64_encode_dup(raw, sizeof(raw)); /* no ',' in the alphabet */
	}
	char *salt = base64_encode_dup(scram->keys.salt, scram->keys.salt_len);
	struct buf b;
	buf_init(&b, SASL_SCRAM_MAX);
	if (buf_printf(&b, "r=%s%s,s=%s,i=%u", scram->nonce, snonce, salt, scram->keys.iterations) <
	    0)
		log_panic("sasl: SCRAM server-first too long");
	free(salt);
	char *nonce = xstrndup(buf_cstr(&b) + 2, strlen(scram->nonce) + strlen(snonce));
	free(snonce);
	sasl_wipe_str(&scram->nonce);
	scram->nonce = nonce;
	scram->server_first = xstrdup(buf_cstr(&b));
	sasl_wipe_str(&scram->challenge);
	scram->challenge = base64_encode_dup((const unsigned char *)b.data, b.len);
	buf_free(&b);
}

/* The value of attribute name ("c=") at *p, after a ',' when comma is set, up to the next
 * ',' or the end: returns its start and length and advances *p to the ',' or NUL after it.
 * NULL (and *p unchanged) when *p does not start with that. */
static const char *sasl_scram_attr(const char **p, bool comma, const char *name, size_t *len_r)
{
	const char *s = *p;
	if (comma && *s++ != ',')
		return NULL;
	size_t n = strlen(name);
	if (strncmp(s, name, n) != 0)
		return NULL;
	const char *v = s + n;
	*len_r = strcspn(v, ",");
	*p = v + *len_r;
	return v;
}

/* client-final-message = "c=" base64(gs2-header) ",r=" nonce ",p=" base64(proof) (no
 * extensions). Fills proof and the length of client-final-message-without-proof. */
static int sasl_scram_client_final(const struct sasl_scram *scram, const char *msg,
                                   unsigned char proof[PASSWORD_SCRAM_KEY_LEN],
                                   size_t *without_proof_len_r, const char **error_r)
{
	const char *p = msg;
	size_t len;
	const char *cb = sasl_scram_attr(&p, false, "c=", &len);
	char *want =
	    base64_encode_dup((const unsigned char *)scram->gs2_header, strlen(scram->gs2_header));
	bool cb_ok = cb != NULL && len == strlen(want) && memcmp(cb, want, len) == 0;
	free(want);
	if (!cb_ok) {
		*error_r = "SCRAM channel binding data mismatch";
		return -1;
	}
	const char *nonce = sasl_scram_attr(&p, true, "r=", &len);
	if (nonce == NULL || len != strlen(scram->nonce) || memcmp(nonce, scram->nonce, len) != 0) {
		*error_r = "SCRAM nonce mismatch";
		return -1;
	}
	*without_proof_len_r = (size_t)(p - msg);
	const char *b64 = sasl_scram_attr(&p, true, "p=", &len);
	if (b64 == NULL) {
		*error_r = *p != '\0' ? "SCRAM extensions not supported" : "SCRAM proof missing";
		return -1;
	}
	if (*p != '\0' ||
	    base64_decode(b64, len, proof, PASSWORD_SCRAM_KEY_LEN) != PASSWORD_SCRAM_KEY_LEN) {
		*error_r = "malformed SCRAM proof";
		return -1;
	}
	return 0;
}

/* RFC 5802 §3: check ClientProof against StoredKey; on success prepare server-final.
 * Returns 1 proved, 0 not. */
static int sasl_scram_verify(struct sasl_scram *scram, const char *final, size_t final_len,
                             const unsigned char proof[PASSWORD_SCRAM_KEY_LEN])
{
	struct buf auth_msg;
	buf_init(&auth_msg, 3 * SASL_SCRAM_MAX);
	if (buf_printf(&auth_msg, "%s,%s,%.*s", scram->client_first, scram->server_first,
	               (int)final_len, final) < 0)
		log_panic("sasl: SCRAM AuthMessage too long");
	unsigned char sig[PASSWORD_SCRAM_KEY_LEN], key[PASSWORD_SCRAM_KEY_LEN];
	unsigned char stored[PASSWORD_SCRAM_KEY_LEN];
	unsigned len = 0;
	sasl_hmac(scram->keys.stored_key, sizeof(scram->keys.stored_key), auth_msg.data,
	          auth_msg.len, sig);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = proof[i] ^ sig[i];
	if (EVP_Digest(key, sizeof(key), stored, &len, EVP_sha256(), NULL) != 1 ||
	    len != sizeof(stored))
		log_panic("sasl: SHA-256 failed");
	bool match = CRYPTO_memcmp(stored, scram->keys.stored_key, sizeof(stored)) == 0;
	bool authzid_ok =
	    scram->authzid[0] == '\0' || strcasecmp(scram->authzid, scram->username) == 0;
	int ok = match && scram->have_keys && authzid_ok ? 1 : 0;
	if (ok) {
		/* server-final-message = "v=" base64(ServerSignature) */
		sasl_hmac(scram->keys.server_key, sizeof(scram->keys.server_key), auth_msg.data,
		          auth_msg.len, sig);
		char *v = base64_encode_dup(sig, sizeof(sig));
		struct buf b;
		buf_init(&b, 64);
		if (buf_printf(&b, "v=%s", v) < 0)
			log_panic("sasl: SCRAM server-final too long");
		free(v);
		sasl_wipe_str(&scram->challenge);
		scram->challenge = base64_encode_dup((const unsigned char *)b.data, b.len);
		buf_free(&b);
	}
	xmemzero(key, sizeof(key));
	xmemzero(sig, sizeof(sig));
	buf_free(&auth_msg);
	return ok;
}

/* One decoded SCRAM message for the current state. Returns like sasl_server_step(). */
static int sasl_scram_message(struct sasl_server *sasl, const struct sasl_response *resp,
                              const char **challenge_r, const char **error_r)
{
	struct sasl_scram *scram = sasl->scram;
	if (sasl->state == SASL_STATE_SCRAM_ACK) {
		if (resp->len != 0) {
			*error_r = "SCRAM response after server-final not empty";
			return -1;
		}
		return 1; /* outcome is 1 already */
	}
	char *msg = sasl_scram_text(resp, error_r);
	if (msg == NULL)
		return -1;
	int ret;
	if (sasl->state == SASL_STATE_SCRAM_FINAL) {
		unsigned char proof[PASSWORD_SCRAM_KEY_LEN];
		size_t final_len;
		ret = sasl_scram_client_final(scram, msg, proof, &final_len, error_r);
		if (ret == 0) {
			scram->outcome = sasl_scram_verify(scram, msg, final_len, proof);
			/* Proved: send server-final and wait for the empty answer. Not proved:
			 * over, with no server-final (RFC 5802 §5.1 allows an error instead). */
			ret = scram->outcome == 1 ? 0 : 1;
			if (ret == 0) {
				sasl->state = SASL_STATE_SCRAM_ACK;
				*challenge_r = scram->challenge;
			}
		}
		xmemzero(proof, sizeof(proof));
	} else {
		ret = sasl_scram_client_first(scram, msg, error_r);
		if (ret == 0) {
			sasl->state = SASL_STATE_SCRAM_KEYS;
			ret = 2;
		}
	}
	sasl_wipe_str(&msg);
	return ret;
}

static int sasl_scram_step(struct sasl_server *sasl, const char *text, const char **challenge_r,
                           const char **error_r)
{
	if (text == NULL) {
		if (sasl->state == SASL_STATE_START) {
			sasl->state = SASL_STATE_SCRAM_FIRST;
			*challenge_r = ""; /* RFC 4422 §5: client-first comes as the answer */
			return 0;
		}
		if (sasl->state == SASL_STATE_SCRAM_READY) {
			sasl_scram_server_first(sasl->scram);
			sasl->state = SASL_STATE_SCRAM_FINAL;
			*challenge_r = sasl->scram->challenge;
			return 0;
		}
		*error_r = "missing response";
		return -1;
	}
	if (sasl->state == SASL_STATE_SCRAM_KEYS || sasl->state == SASL_STATE_SCRAM_READY) {
		*error_r = "SCRAM response before server-first";
		return -1;
	}
	struct sasl_response resp;
	int ret = sasl_response_decode(sasl, text, sasl->state == SASL_STATE_START, &resp, error_r);
	if (ret == 0) {
		*error_r = "cancelled by client";
		return -1;
	}
	if (ret > 0)
		ret = sasl_scram_message(sasl, &resp, challenge_r, error_r);
	sasl_response_release(&resp);
	return ret;
}

/* ---- every mechanism ---- */

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
	else if (sasl->mech == SASL_MECH_LOGIN)
		ret = sasl_login_step(sasl, response_b64, challenge_r, error_r);
	else
		ret = sasl_scram_step(sasl, response_b64, challenge_r, error_r);
	if (ret == 1 || ret == -1) {
		*challenge_r = "";
		sasl->state = ret > 0 ? SASL_STATE_DONE : SASL_STATE_FAILED;
	}
	if (ret < 0) {
		/* Drop partial credentials (a LOGIN user name, SCRAM keys) so nothing half-valid
		 * remains. */
		sasl_wipe_str(&sasl->authzid);
		sasl_wipe_str(&sasl->authcid);
		sasl_wipe_str(&sasl->password);
		if (sasl->scram != NULL) {
			xmemzero(&sasl->scram->keys, sizeof(sasl->scram->keys));
			sasl->scram->have_keys = false;
			sasl->scram->outcome = -1;
		}
	}
	return ret;
}

void sasl_server_credentials(struct sasl_server *sasl, const char **authzid_r,
                             const char **authcid_r, const char **password_r)
{
	ASSERT(sasl->state == SASL_STATE_DONE && sasl->mech != SASL_MECH_SCRAM_SHA_256);
	*authzid_r = sasl->authzid;
	*authcid_r = sasl->authcid;
	*password_r = sasl->password;
}

const char *sasl_server_username(const struct sasl_server *sasl)
{
	ASSERT(sasl->scram != NULL && sasl->scram->username != NULL);
	return sasl->scram->username;
}

void sasl_server_set_credentials(struct sasl_server *sasl, const struct password_scram *keys)
{
	ASSERT(sasl->state == SASL_STATE_SCRAM_KEYS);
	if (keys != NULL) {
		ASSERT(keys->salt_len >= 1 && keys->salt_len <= PASSWORD_SCRAM_SALT_MAX);
		sasl->scram->keys = *keys;
		sasl->scram->have_keys = true;
	}
	sasl->state = SASL_STATE_SCRAM_READY;
}

int sasl_server_outcome(const struct sasl_server *sasl)
{
	return sasl->scram != NULL ? sasl->scram->outcome : -1;
}

void sasl_server_set_test_nonce(struct sasl_server *sasl, const char *nonce)
{
	ASSERT(sasl->scram != NULL);
	size_t n = strlen(nonce);
	ASSERT(n >= 1 && n <= SASL_SCRAM_TEST_NONCE_MAX);
	for (size_t i = 0; i < n; i++)
		ASSERT(sasl_scram_nonce_char(nonce[i]));
	memcpy(sasl->scram->test_nonce, nonce, n + 1);
}
