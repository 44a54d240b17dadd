/* DKIM signing (RFC 6376) of a message held in memory: rsa-sha256 and ed25519-sha256
 * (RFC 8463), c=relaxed/relaxed, with the oversigned header set below. The result is the
 * complete "DKIM-Signature: ...\r\n" field text, one per key, for the caller to put in front
 * of the message as it sends it. No I/O: keys come from the caller (dkim_keys.h loads them).
 * Uses OpenSSL's libcrypto (EVP) only. */
#ifndef POSTHORN_MIME_DKIM_SIGN_H
#define POSTHORN_MIME_DKIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/arena.h"
#include "core/buf.h"
#include "mime/dkim_canon.h"

enum dkim_algorithm {
	DKIM_ALG_RSA,     /* a=rsa-sha256 (keys of 1024 bits and more; we generate 2048) */
	DKIM_ALG_ED25519, /* a=ed25519-sha256 (RFC 8463) */
};

/* "rsa" / "ed25519": the names used in key file names, k= and the CLI. */
const char *dkim_algorithm_name(enum dkim_algorithm alg);
/* Parse such a name. 0 ok, -1 unknown. */
int dkim_algorithm_parse(const char *name, enum dkim_algorithm *alg_r);

struct dkim_key {
	const char *domain;   /* d=, lower-case ASCII */
	const char *selector; /* s= */
	enum dkim_algorithm alg;
	EVP_PKEY *pkey; /* private key of the algorithm's type; the caller owns it */
};

/* The header fields a signature covers (h=). Every instance present is signed (at most
 * DKIM_SIGN_INSTANCES_MAX per name, the lowest ones, as RFC 6376 §5.4.2 selects from the
 * bottom); names marked oversigned get one more, empty, instance, so that a field of that
 * name added later (a second From:, Subject:, ...) breaks the signature (RFC 6376 §8.15). */
struct dkim_sign_field_rule {
	const char *name;
	bool oversign;
};
extern const struct dkim_sign_field_rule dkim_sign_fields[];
extern const size_t dkim_sign_fields_count;
#define DKIM_SIGN_INSTANCES_MAX 64

/* The h= list for the header fields of msg (as dkim_canon_fields() returns them), in
 * dkim_sign_fields order, each name repeated once per instance (+1 when oversigned).
 * Returns the count; *names_r is an array in arena pointing at static names. */
size_t dkim_sign_h_list(struct arena *arena, const unsigned char *msg,
                        const struct dkim_field *fields, size_t nfields, const char ***names_r);

/* Which domain to sign msg[0..len) for: the domain of the address in its From: field
 * (DMARC alignment, RFC 7489 §3.1), lower-cased. NULL — do not sign — when there is no From
 * field or more than one, when it holds no mailbox, when its mailboxes have different
 * domains, or when the domain is not a valid ASCII domain name (an address literal, a
 * U-label). The string is in arena. The caller signs only when it has keys for the domain. */
const char *dkim_sign_domain(struct arena *arena, const unsigned char *msg, size_t len);

/* Sign msg[0..len) (the message as it will be sent: header section, empty line, body; any
 * "Return-Path:" field is never signed, so the stored file may be passed whole; bare CR and
 * LF are signed as CRLF, the form an SMTP client must send) with each of the nkeys keys at
 * time now (t=; no x=). Appends one "DKIM-Signature: ...\r\n" field per key to out, in key
 * order, folded at 78 columns. Returns nkeys, or -1 with *error_r (static text) when msg has
 * no From: field, a key does not fit its algorithm or signing fails (out may then hold the
 * signatures made before). */
int dkim_sign(const unsigned char *msg, size_t len, const struct dkim_key *keys, size_t nkeys,
              time_t now, struct buf *out, const char **error_r)
    __attribute__((warn_unused_result));

#endif
