/* Stored credentials for accounts. One opaque string per account holds an argon2id hash
 * (libsodium crypto_pwhash_str, OPSLIMIT/MEMLIMIT_INTERACTIVE: ~64 MiB and 50-100 ms) and,
 * separated by one space, the SCRAM-SHA-256 keys of RFC 5802 §3 / RFC 7677:
 *   "$argon2id$v=19$m=...,t=...,p=...$salt$hash SCRAM-SHA-256$<i>$<salt>$<StoredKey>$<ServerKey>"
 * (base64 with padding, RFC 4648 §4). Strings made before SCRAM support hold the argon2
 * part alone; they still verify, they just cannot serve SCRAM until the password is set
 * again. Anything that spoils the argon2 part (a leading '!' to lock it) disables both. */
#ifndef POSTHORN_AUTH_PASSWORD_H
#define POSTHORN_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define PASSWORD_SCRAM_PREFIX "SCRAM-SHA-256$"
#define PASSWORD_SCRAM_ITERATIONS 4096         /* what we create: RFC 7677 §4 minimum */
#define PASSWORD_SCRAM_ITERATIONS_MIN 4096     /* what we accept from storage */
#define PASSWORD_SCRAM_ITERATIONS_MAX 10000000 /* bounds a client's PBKDF2 work */
#define PASSWORD_SCRAM_SALT_LEN 16             /* what we create */
#define PASSWORD_SCRAM_SALT_MAX 64             /* what we accept from storage */
#define PASSWORD_SCRAM_KEY_LEN 32              /* SHA-256 output */

/* SCRAM-SHA-256 server keys of one account. StoredKey = H(ClientKey) and
 * ServerKey = HMAC(SaltedPassword, "Server Key") (RFC 5802 §3): they let a server check a
 * proof but not recover the password. ServerKey is still secret (it lets its holder
 * pose as the server): wipe with password_scram_wipe(). */
struct password_scram {
	unsigned iterations;
	size_t salt_len;
	unsigned char salt[PASSWORD_SCRAM_SALT_MAX];
	unsigned char stored_key[PASSWORD_SCRAM_KEY_LEN];
	unsigned char server_key[PASSWORD_SCRAM_KEY_LEN];
};

/* Initialise libsodium once (thread-safe, cheap after the first call). Every function here
 * calls it; other auth/ code that uses libsodium calls it too. 0 ok, -1 libsodium unusable. */
int password_init(void) __attribute__((warn_unused_result));

/* Make the credentials string for password (NUL-terminated; any bytes): the argon2id hash
 * plus, when password_scram_usable(password), SCRAM-SHA-256 keys with a random 16-byte salt
 * and 4096 iterations. Returns the malloc'd string, or NULL only on internal failure
 * (libsodium unusable, or the 64 MiB working area not available). */
char *password_hash_dup(const char *password) __attribute__((warn_unused_result));

/* Check password against a credentials string from password_hash_dup(), with or without
 * the SCRAM part (bare argon2i hashes are accepted too). Returns 1 match, 0 no match, -1 the
 * string is not valid (corrupt or locked argon2 part, or a malformed SCRAM part) or internal
 * failure. Only the argon2 part is checked against the password; the comparison is
 * constant-time. */
int password_verify(const char *credentials, const char *password)
    __attribute__((warn_unused_result));

/* 1 when the argon2 part was made with other parameters than today's (re-hash after a
 * successful login), 0 when it is current, -1 when the string is not valid (as for
 * password_verify()). A missing SCRAM part does not count here: see password_scram_keys(). */
int password_needs_rehash(const char *credentials) __attribute__((warn_unused_result));

/* The SCRAM-SHA-256 keys of a credentials string. 0 ok (*keys_r filled), -1 none: no SCRAM
 * part (an old string, or a password that was not SCRAM-usable), a malformed one, or an
 * argon2 part that is not valid (a locked account must not log in through SCRAM either). */
int password_scram_keys(const char *credentials, struct password_scram *keys_r)
    __attribute__((warn_unused_result));

/* Derive the SCRAM-SHA-256 keys of password with the given salt (1..PASSWORD_SCRAM_SALT_MAX
 * bytes) and iteration count (PBKDF2-HMAC-SHA-256, RFC 5802 §3). No usability check: the
 * caller decides. Public for tests and tools. */
void password_scram_derive(const char *password, const unsigned char *salt, size_t salt_len,
                           unsigned iterations, struct password_scram *keys_r);

/* Our SASLprep (RFC 4013) stand-in: a password gets SCRAM keys only when it is 1..1024
 * octets of printable ASCII (0x20-0x7e). For those SASLprep is the identity (no mapping,
 * NFKC changes nothing, no prohibited characters), so a client that applies SASLprep and
 * one that does not derive the same keys. Any other password (non-ASCII, controls) gets
 * no SCRAM keys at all rather than keys a SASLprep client might not reproduce: it keeps
 * working with PLAIN and LOGIN. */
bool password_scram_usable(const char *password);

/* Wipe keys (they hold the secret ServerKey). */
void password_scram_wipe(struct password_scram *keys);

/* A random password of n characters from [A-Za-z0-9] (n * 5.95 bits of entropy; no symbols,
 * so it survives shells and config files). Malloc'd, NUL-terminated; never NULL. */
char *password_random_dup(size_t n);

#endif
