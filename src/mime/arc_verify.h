/* ARC verification (RFC 8617 §5.2) of a message held in memory, without I/O, in the style of
 * mime/dkim_verify: arc_verify_run() checks the chain's structure, the newest
 * ARC-Message-Signature and every ARC-Seal whose key record it has, and when one is missing
 * names it (arc_verify_need(): a TXT lookup of s._domainkey.d) for the caller to look up and
 * hand over (arc_verify_answer()). The result is the chain's: none, pass or fail (RFC 8617
 * §4.4, the "arc" method of RFC 8601). */
#ifndef POSTHORN_MIME_ARC_VERIFY_H
#define POSTHORN_MIME_ARC_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "mime/dkim_record.h"

#define ARC_INSTANCES_MAX 50 /* RFC 8617 §4.2.1 */

enum arc_result { ARC_RESULT_NONE, ARC_RESULT_PASS, ARC_RESULT_FAIL };

struct arc_verify;

/* Verify msg[0..len) (kept by pointer: it must outlive the verifier) at time now. Never
 * NULL. */
struct arc_verify *arc_verify_new(const unsigned char *msg, size_t len, int64_t now);
/* Frees the verifier; sets *v to NULL; accepts NULL. */
void arc_verify_free(struct arc_verify **v);
/* 1 when the result is known, 0 when arc_verify_need() names a key record still needed. */
int arc_verify_run(struct arc_verify *v);
/* After 0 from arc_verify_run(): the TXT name to look up. */
const char *arc_verify_need(const struct arc_verify *v);
/* The TXT answer for name: n records (each one's strings joined; lens their lengths, or NULL
 * for NUL-terminated texts). */
void arc_verify_answer(struct arc_verify *v, const char *name, enum dkim_dns_status status,
                       const char *const *texts, const size_t *lens, size_t n);
/* After 1: the result; the chain's length (the newest instance, 0 for none); why it failed
 * (static text, NULL unless fail); the domain that sealed the newest instance (its ARC-Seal's
 * d=, "" when unknown), which a receiver may trust for its DMARC override. */
enum arc_result arc_verify_result(const struct arc_verify *v, unsigned *instances_r,
                                  const char **problem_r, const char **sealer_r);
/* "none", "pass", "fail". */
const char *arc_result_name(enum arc_result result);

#endif
