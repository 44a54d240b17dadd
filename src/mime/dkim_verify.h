/* DKIM verification (RFC 6376 §6, RFC 8463 Ed25519, RFC 8301) of a message held in memory,
 * without I/O: dkim_verify_run() verifies every signature whose key record it has, and when
 * one is missing names it (dkim_verify_need(): a TXT lookup of s._domainkey.d) for the caller
 * to look up and hand over (dkim_verify_answer()). One result per DKIM-Signature field, up to
 * a limit, in header order. Uses libcrypto (EVP). */
#ifndef POSTHORN_MIME_DKIM_VERIFY_H
#define POSTHORN_MIME_DKIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime/dkim_record.h"

/* RFC 8601 §2.7.1 result names (none when the message has no signature). */
enum dkim_result {
	DKIM_RESULT_PASS,
	DKIM_RESULT_FAIL,
	DKIM_RESULT_NEUTRAL,
	DKIM_RESULT_POLICY,
	DKIM_RESULT_TEMPERROR,
	DKIM_RESULT_PERMERROR,
};

struct dkim_signature_result {
	enum dkim_result result;
	const char *domain;    /* d= ("" when unreadable) */
	const char *selector;  /* s= */
	const char *algorithm; /* a= */
	const char *b_prefix;  /* the first 8 characters of b= (RFC 6008 header.b) */
	const char *problem;   /* why not pass (static text), or NULL */
	bool testing;          /* the key record says t=y */
	bool body_length;      /* l= was given: text may follow what was signed */
};

struct dkim_verify;

/* Verify msg[0..len) (kept by pointer: it must outlive the verifier) at time now: at most
 * max_signatures DKIM-Signature fields, the first ones. Never NULL. */
struct dkim_verify *dkim_verify_new(const unsigned char *msg, size_t len, size_t max_signatures,
                                    int64_t now);
/* For ARC (mime/arc_verify): verify the ARC-Message-Signature of the given instance (i=) as
 * a DKIM signature (RFC 8617 §4.1.2: no v=, i= is the instance, h= need not sign From);
 * dkim_verify_count() is 0 when msg has none of that instance. */
struct dkim_verify *dkim_verify_new_ams(const unsigned char *msg, size_t len, uint64_t instance,
                                        int64_t now);
/* Decode the keys through cache (mime/dkim_key_cache; it must outlive the verifier). */
struct dkim_key_cache;
void dkim_verify_set_key_cache(struct dkim_verify *v, struct dkim_key_cache *cache);
/* Frees the verifier; sets *v to NULL; accepts NULL. */
void dkim_verify_free(struct dkim_verify **v);
/* Verify what can be: 1 when every signature has its result, 0 when dkim_verify_need()
 * names a key record still needed. */
int dkim_verify_run(struct dkim_verify *v);
/* After 0 from dkim_verify_run(): the TXT name to look up. */
const char *dkim_verify_need(const struct dkim_verify *v);
/* The TXT answer for name: n records (each one's strings joined; lens their lengths). */
void dkim_verify_answer(struct dkim_verify *v, const char *name, enum dkim_dns_status status,
                        const char *const *texts, const size_t *lens, size_t n);
/* The signatures looked at, and the result of the i-th (after dkim_verify_run() gave 1). */
size_t dkim_verify_count(const struct dkim_verify *v);
const struct dkim_signature_result *dkim_verify_result(const struct dkim_verify *v, size_t i);
/* "pass", "fail", ... */
const char *dkim_result_name(enum dkim_result result);

#endif
