/* Stored credentials (see password.h): argon2id through libsodium, SCRAM-SHA-256 keys
 * through OpenSSL's PBKDF2 and HMAC, and the one-string format that carries both.
 * Intermediate secrets (salted passwords, client keys, copies of hash strings) are wiped;
 * passwords themselves are owned by the callers and never copied here. */
#include "auth/password.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* Longest password that gets SCRAM keys (PBKDF2 takes an int length; anything longer is
 * not a password a person types). */
#define PASSWORD_SCRAM_PASSWORD_MAX 1024

static pthread_once_t password_once = PTHREAD_ONCE_INIT;
static int password_init_result = -1;

static void password_init_once(void)
{
	/* sodium_init() returns 1 when already initialised by someone else: fine too. */
	password_init_result = sodium_init() < 0 ? -1 : 0;
	if (password_init_result < 0)
		log_error("event=sodium_init result=failed");
}

int password_init(void)
{
	pthread_once(&password_once, password_init_once);
	return password_init_result;
}

/* ---- the credentials string ---- */

/* Split credentials into the argon2 part [0, *argon2_len_r) and the SCRAM part (*scram_r,
 * NULL when absent). -1 when the shape is wrong: an empty part, or more than one space. */
static int password_split(const char *credentials, size_t *argon2_len_r, const char **scram_r)
{
	const char *sp = strchr(credentials, ' ');
	*scram_r = NULL;
	*argon2_len_r = sp == NULL ? strlen(credentials) : (size_t)(sp - credentials);
	if (*argon2_len_r == 0)
		return -1;
	if (sp != NULL) {
		if (sp[1] == '\0' || strchr(sp + 1, ' ') != NULL)
			return -1;
		*scram_r = sp + 1;
	}
	return 0;
}

/* Copy the argon2 part of credentials to out (NUL-terminated; libsodium wants a C string).
 * -1 when the shape is wrong or the part cannot be an argon2 string (too long). */
static int password_argon2_part(const char *credentials, char out[crypto_pwhash_STRBYTES],
                                const char **scram_r)
{
	size_t len;
	if (password_split(credentials, &len, scram_r) < 0 || len >= crypto_pwhash_STRBYTES)
		return -1;
	memcpy(out, credentials, len);
	out[len] = '\0';
	return 0;
}

/* 1 when the argon2 string needs a re-hash, 0 current, -1 not a valid argon2 string. */
static int password_argon2_needs_rehash(const char *hash)
{
	if (password_init() < 0)
		return -1;
	/* Decodes the string (both argon2 variants) without hashing: -1 when malformed. */
	int ret = crypto_pwhash_str_needs_rehash(hash, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                                         crypto_pwhash_MEMLIMIT_INTERACTIVE);
	if (ret < 0)
		return -1;
	if (ret == 0 &&
	    strncmp(hash, crypto_pwhash_STRPREFIX, strlen(crypto_pwhash_STRPREFIX)) != 0)
		return 1; /* valid argon2i hash: same costs, older variant */
	return ret == 0 ? 0 : 1;
}

/* Parse a decimal iteration count: digits only, no leading zero, overflow-checked before
 * every digit, within the accepted range. Advances *p past the digits. */
static int password_parse_iterations(const char **p, unsigned *iterations_r)
{
	const char *s = *p;
	unsigned long v = 0;
	if (*s < '1' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (PASSWORD_SCRAM_ITERATIONS_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < PASSWORD_SCRAM_ITERATIONS_MIN)
		return -1;
	*iterations_r = (unsigned)v;
	*p = s;
	return 0;
}

/* Decode one '$'-terminated (or, when last, NUL-terminated) base64 field at *p into
 * out[0..max); returns the decoded length, -1 on bad input. Advances *p past the field and
 * its '$'. */
static ssize_t password_parse_b64(const char **p, bool last, unsigned char *out, size_t max)
{
	const char *s = *p;
	const char *end = last ? s + strlen(s) : strchr(s, '$');
	if (end == NULL)
		return -1;
	ssize_t n = base64_decode(s, (size_t)(end - s), out, max);
	*p = last ? end : end + 1;
	return n;
}

/* "SCRAM-SHA-256$<i>$<salt>$<StoredKey>$<ServerKey>" → keys. 0 ok, -1 malformed. */
static int password_scram_parse(const char *s, struct password_scram *keys)
{
	size_t prefix = strlen(PASSWORD_SCRAM_PREFIX);
	if (strncmp(s, PASSWORD_SCRAM_PREFIX, prefix) != 0)
		return -1;
	s += prefix;
	if (password_parse_iterations(&s, &keys->iterations) < 0 || *s++ != '$')
		return -1;
	ssize_t n = password_parse_b64(&s, false, keys->salt, sizeof(keys->salt));
	if (n < 1)
		return -1;
	keys->salt_len = (size_t)n;
	if (password_parse_b64(&s, false, keys->stored_key, sizeof(keys->stored_key)) !=
	        PASSWORD_SCRAM_KEY_LEN ||
	    password_parse_b64(&s, true, keys->server_key, sizeof(keys->server_key)) !=
	        PASSWORD_SCRAM_KEY_LEN)
		return -1;
	return 0;
}

/* Check the whole string. Returns 1/0/-1 like the argon2 re-hash check; fills *keys_r
 * (when not NULL) and *have_scram_r. */
static int password_check_credentials(const char *credentials, struct password_scram *keys_r,
                                      bool *have_scram_r)
{
	char argon2[crypto_pwhash_STRBYTES];
	struct password_scram keys;
	const char *scram;
	*have_scram_r = false;
	memset(&keys, 0, sizeof(keys));
	if (password_argon2_part(credentials, argon2, &scram) < 0)
		return -1;
	int ret = password_argon2_needs_rehash(argon2);
	xmemzero(argon2, sizeof(argon2));
	if (ret < 0 || scram == NULL)
		return ret;
	if (password_scram_parse(scram, &keys) < 0) {
		password_scram_wipe(&keys);
		return -1;
	}
	*have_scram_r = true;
	if (keys_r != NULL)
		*keys_r = keys;
	password_scram_wipe(&keys);
	return ret;
}

int password_needs_rehash(const char *credentials)
{
	bool have_scram;
	return password_check_credentials(credentials, NULL, &have_scram);
}

int password_scram_keys(const char *credentials, struct password_scram *keys_r)
{
	bool have_scram;
	memset(keys_r, 0, sizeof(*keys_r));
	if (password_check_credentials(credentials, keys_r, &have_scram) < 0 || !have_scram) {
		password_scram_wipe(keys_r);
		return -1;
	}
	return 0;
}

int password_verify(const char *credentials, const char *password)
{
	char argon2[crypto_pwhash_STRBYTES];
	bool have_scram;
	const char *scram;
	/* crypto_pwhash_str_verify() returns -1 both for "no match" and "not a hash"; check the
	 * form first so a corrupt stored string can be told from a wrong password. */
	if (password_check_credentials(credentials, NULL, &have_scram) < 0 ||
	    password_argon2_part(credentials, argon2, &scram) < 0)
		return -1;
	int ret = crypto_pwhash_str_verify(argon2, password, strlen(password)) == 0 ? 1 : 0;
	xmemzero(argon2, sizeof(argon2));
	return ret;
}

/* ---- SCRAM-SHA-256 keys ---- */

bool password_scram_usable(const char *password)
{
	size_t n = 0;
	for (const char *p = password; *p != '\0'; p++, n++) {
		if (*p < 0x20 || *p > 0x7e || n >= PASSWORD_SCRAM_PASSWORD_MAX)
			return false;
	}
	return n > 0;
}

void password_scram_wipe(struct password_scram *keys)
{
	xmemzero(keys, sizeof(*keys));
}

static void password_hmac(const unsigned char *key, size_t key_len, const char *msg,
                          unsigned char out[PASSWORD_SCRAM_KEY_LEN])
{
	unsigned len = 0;
	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
	         &len) == NULL ||
	    len != PASSWORD_SCRAM_KEY_LEN)
		log_panic("password: HMAC-SHA-256 failed");
}

void password_scram_derive(const char *password, const unsigned char *salt, size_t salt_len,
                           unsigned iterations, struct password_scram *keys_r)
{
	unsigned char salted[PASSWORD_SCRAM_KEY_LEN], client_key[PASSWORD_SCRAM_KEY_LEN];
	unsigned len = 0;

	ASSERT(salt_len >= 1 && salt_len <= PASSWORD_SCRAM_SALT_MAX);
	ASSERT(iterations >= 1 && iterations <= PASSWORD_SCRAM_ITERATIONS_MAX);
	size_t pw_len = strnlen(password, PASSWORD_SCRAM_PASSWORD_MAX + 1);
	ASSERT(pw_len <= PASSWORD_SCRAM_PASSWORD_MAX);
	memset(keys_r, 0, sizeof(*keys_r));
	/* RFC 5802 §3: SaltedPassword = Hi(Normalize(password), salt, i) */
	if (PKCS5_PBKDF2_HMAC(password, (int)pw_len, salt, (int)salt_len, (int)iterations,
	                      EVP_sha256(), (int)sizeof(salted), salted) != 1)
		log_panic("password: PBKDF2-HMAC-SHA-256 failed");
	password_hmac(salted, sizeof(salted), "Client Key", client_key);
	if (EVP_Digest(client_key, sizeof(client_key), keys_r->stored_key, &len, EVP_sha256(),
	               NULL) != 1 ||
	    len != PASSWORD_SCRAM_KEY_LEN)
		log_panic("password: SHA-256 failed");
	password_hmac(salted, sizeof(salted), "Server Key", keys_r->server_key);
	memcpy(keys_r->salt, salt, salt_len);
	keys_r->salt_len = salt_len;
	keys_r->iterations = iterations;
	xmemzero(salted, sizeof(salted));
	xmemzero(client_key, sizeof(client_key));
}

/* Append one base64 field to b. */
static void password_put_b64(struct buf *b, const unsigned char *data, size_t len)
{
	char *text = base64_encode_dup(data, len);
	if (buf_puts(b, text) < 0)
		log_panic("password: credentials string too long");
	free(text);
}

/* argon2 + " SCRAM-SHA-256$..." for keys, malloc'd. */
static char *password_join(const char *argon2, const struct password_scram *keys)
{
	struct buf b;
	buf_init(&b, 1024);
	if (buf_printf(&b, "%s %s%u$", argon2, PASSWORD_SCRAM_PREFIX, keys->iterations) < 0)
		log_panic("password: credentials string too long");
	password_put_b64(&b, keys->salt, keys->salt_len);
	if (buf_puts(&b, "$") < 0)
		log_panic("password: credentials string too long");
	password_put_b64(&b, keys->stored_key, sizeof(keys->stored_key));
	if (buf_puts(&b, "$") < 0)
		log_panic("password: credentials string too long");
	password_put_b64(&b, keys->server_key, sizeof(keys->server_key));
	char *out = xstrdup(buf_cstr(&b));
	xmemzero(b.data, b.cap);
	buf_free(&b);
	return out;
}

char *password_hash_dup(const char *password)
{
	char out[crypto_pwhash_STRBYTES];

	if (password_init() < 0)
		return NULL;
	if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		log_error("event=password_hash result=failed reason=out_of_memory");
		return NULL;
	}
	char *credentials;
	if (password_scram_usable(password)) {
		unsigned char salt[PASSWORD_SCRAM_SALT_LEN];
		struct password_scram keys;
		randombytes_buf(salt, sizeof(salt));
		password_scram_derive(password, salt, sizeof(salt), PASSWORD_SCRAM_ITERATIONS,
		                      &keys);
		credentials = password_join(out, &keys);
		password_scram_wipe(&keys);
	} else {
		credentials = xstrdup(out);
	}
	xmemzero(out, sizeof(out));
	return credentials;
}

char *password_random_dup(size_t n)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	if (password_init() < 0)
		log_panic("password_random_dup: libsodium unusable");
	char *out = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	out[n] = '\0';
	return out;
}
