/* Argon2id password hashing and random passwords (see password.h), with libsodium doing
 * all cryptography. Intermediate copies of hash output are wiped; passwords themselves
 * are owned by the callers and never copied here. */
#include "auth/password.h"

#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

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
	char *hash = xstrdup(out);
	xmemzero(out, sizeof(out));
	return hash;
}

int password_needs_rehash(const char *hash)
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

int password_verify(const char *hash, const char *password)
{
	/* crypto_pwhash_str_verify() returns -1 both for "no match" and "not a hash"; check the
	 * form first so a corrupt stored hash can be told from a wrong password. */
	if (password_needs_rehash(hash) < 0)
		return -1;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0 ? 1 : 0;
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
