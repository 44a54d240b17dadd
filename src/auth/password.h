/* Password hashing for stored accounts: argon2id through libsodium's crypto_pwhash_str
 * (OPSLIMIT_INTERACTIVE, MEMLIMIT_INTERACTIVE: about 64 MiB and 50-100 ms per hash), plus
 * random passwords for generated accounts. Hash strings are the self-describing
 * "$argon2id$v=19$m=...,t=...,p=...$salt$hash" form, so parameters can change later. */
#ifndef POSTHORN_AUTH_PASSWORD_H
#define POSTHORN_AUTH_PASSWORD_H

#include <stddef.h>

/* Initialise libsodium once (thread-safe, cheap after the first call). Every function here
 * calls it; other auth/ code that uses libsodium calls it too. 0 ok, -1 libsodium unusable. */
int password_init(void) __attribute__((warn_unused_result));

/* Hash password (NUL-terminated; any bytes). Returns the malloc'd hash string, or NULL only
 * on internal failure (libsodium unusable, or the 64 MiB working area not available). */
char *password_hash_dup(const char *password) __attribute__((warn_unused_result));

/* Check password against a hash string made by password_hash_dup() (argon2i hashes are
 * accepted too). Returns 1 match, 0 no match, -1 hash is not a valid argon2 hash string (or
 * internal failure). The comparison is constant-time. */
int password_verify(const char *hash, const char *password) __attribute__((warn_unused_result));

/* 1 when hash was made with other parameters than today's (re-hash after a successful login),
 * 0 when it is current, -1 when it is not a valid argon2 hash string. */
int password_needs_rehash(const char *hash) __attribute__((warn_unused_result));

/* A random password of n characters from [A-Za-z0-9] (n * 5.95 bits of entropy; no symbols,
 * so it survives shells and config files). Malloc'd, NUL-terminated; never NULL. */
char *password_random_dup(size_t n);

#endif
