/* DKIM private keys in the data directory and the signer the outbound engine calls.
 * Layout: <data_dir>/dkim/<domain>/<selector>.<algorithm>.pem (PKCS #8 PEM, mode 0600, the
 * directories 0700), algorithm "rsa" or "ed25519". Every key file of a domain is in use: a
 * message gets one signature per key, which is how two selectors overlap during a rotation.
 * Unlike the rest of mime/ this module does file I/O (it is not a parser); it uses
 * libcrypto only. */
#ifndef POSTHORN_MIME_DKIM_KEYS_H
#define POSTHORN_MIME_DKIM_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "core/buf.h"
#include "mime/dkim_sign.h"

/* Keys per domain that `generate` allows (the current and the next, or the old and the new
 * during a rotation). */
#define DKIM_KEYS_PER_DOMAIN_MAX 2
/* Key files of one domain that the signer uses at most (more only by hand). */
#define DKIM_KEYS_LOAD_MAX 8

/* A selector we accept: 1..63 octets of ASCII letters, digits and '-', not starting or
 * ending with '-' (one DNS label; no dots, so it is also a safe file name). */
bool dkim_keys_selector_valid(const char *selector);

/* ---- the set the signer uses (thread-safe) ---- */

struct dkim_keys;

/* A key set reading <data_dir>/dkim. Nothing is read yet. */
struct dkim_keys *dkim_keys_new(const char *data_dir);
/* Free the set and every cached key; accepts NULL and sets *keys to NULL. */
void dkim_keys_free(struct dkim_keys **keys);

/* "Signatures for this message": choose the domain (dkim_sign_domain(): the From: address's
 * domain, or its nearest parent domain with keys, never a TLD), take that domain's keys (cached;
 * re-read when the domain's key directory changed, so a key generated or removed counts from the
 * next message on) and sign msg[0..len) with each (see dkim_sign() for what msg is). Appends the
 * DKIM-Signature field(s) to out. Returns the number of signatures (0: no From domain, or no key
 * for it: send unsigned), or -1 with *error_r (static text) when a key cannot be read or signing
 * fails. May be called from any thread. */
int dkim_keys_sign(struct dkim_keys *keys, const unsigned char *msg, size_t len, time_t now,
                   struct buf *out, const char **error_r) __attribute__((warn_unused_result));

/* ---- management (the CLI) ---- */

struct dkim_key_info {
	const char *domain;
	const char *selector;
	enum dkim_algorithm alg;
	time_t created; /* the key file's modification time */
};

/* Create a key for domain (lower-case ASCII, checked by the caller to be ours) with selector
 * and algorithm (RSA: 2048 bits). Creates the directories (0700) and the file (0600,
 * written to a temporary name, synced, then linked into place so that it never replaces
 * another file); when uid is not (uid_t)-1 they are given to uid:gid (the user the server
 * runs as). Refuses when the selector exists (any algorithm) or when the domain already has
 * DKIM_KEYS_PER_DOMAIN_MAX keys. On success appends the TXT record's text
 * ("v=DKIM1; k=rsa; p=...") to record and the file's path to path. 0 ok, -1 with *error_r
 * (valid until the next call on this thread). */
int dkim_keys_generate(const char *data_dir, const char *domain, const char *selector,
                       enum dkim_algorithm alg, uid_t uid, gid_t gid, struct buf *record,
                       struct buf *path, const char **error_r) __attribute__((warn_unused_result));

/* Call cb for each key file of every domain (domain A-Z, then selector A-Z); with domain
 * not NULL only for that domain. Returns the count, or -1 with *error_r. */
int dkim_keys_list(const char *data_dir, const char *domain,
                   void (*cb)(void *ctx, const struct dkim_key_info *info), void *ctx,
                   const char **error_r);

/* Remove the key file(s) of domain + selector, and leave an empty ".removed-SELECTOR" file in
 * the domain's directory so that the selector counts as used (its old record may linger in
 * DNS caches). 1 removed, 0 no such key, -1 with *error_r. */
int dkim_keys_remove(const char *data_dir, const char *domain, const char *selector,
                     const char **error_r);

/* True when domain has a key with selector (case-insensitive) or had one and it was
 * removed. */
bool dkim_keys_selector_used(const char *data_dir, const char *domain, const char *selector);

/* The zone-file line for a record: `SELECTOR._domainkey.DOMAIN. IN TXT "..." "..."`, the
 * text split into quoted strings of at most 255 octets (RFC 1035 §3.3.14 character-strings;
 * a TXT record's strings are joined without separator, RFC 6376 §3.6.2.2). Appended to out
 * without a line end. */
int dkim_keys_zone_line(const char *selector, const char *domain, const char *txt, struct buf *out)
    __attribute__((warn_unused_result));

#endif
