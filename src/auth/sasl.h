/* Server side of the SASL mechanisms SCRAM-SHA-256 (RFC 5802, RFC 7677), PLAIN (RFC 4616)
 * and LOGIN (draft-murchison-sasl-login), shared by SMTP AUTH (RFC 4954), POP3 AUTH
 * (RFC 5034) and IMAP AUTHENTICATE (RFC 3501 §6.2.2). Pure: it takes the client's base64
 * text and returns challenges; the protocol does the I/O, and for PLAIN/LOGIN then calls
 * auth_verify(), while SCRAM checks the client's proof itself against stored keys. */
#ifndef POSTHORN_AUTH_SASL_H
#define POSTHORN_AUTH_SASL_H

#include <stddef.h>

#include "auth/password.h"

enum sasl_mech { SASL_MECH_PLAIN, SASL_MECH_LOGIN, SASL_MECH_SCRAM_SHA_256 };

/* Longest authzid, authcid and password we accept, in octets (RFC 4616 §2 says 255 for
 * PLAIN; LOGIN and the decoded SCRAM user names get the same limits). */
#define SASL_FIELD_MAX 255
/* Longest SCRAM client nonce, in characters (RFC 5802 sets none). */
#define SASL_SCRAM_NONCE_MAX 128

/* Parse a mechanism name, case-insensitively ("plain", "scram-sha-256"). 0 ok, -1 unknown. */
int sasl_mech_parse(const char *name, enum sasl_mech *mech_r) __attribute__((warn_unused_result));
/* The upper-case name of mech ("PLAIN"). Static. */
const char *sasl_mech_name(enum sasl_mech mech);
/* Space-separated list of every mechanism in the server's order of preference,
 * "SCRAM-SHA-256 PLAIN LOGIN", for EHLO, CAPA and CAPABILITY (the protocol decides whether
 * to offer them, e.g. only after TLS). Static. */
const char *sasl_mech_list(void);

struct sasl_server;

/* Start an exchange. max_len caps each decoded client response in octets; 0, or anything
 * above the mechanism's largest valid message (767 for PLAIN and LOGIN, 2048 for
 * SCRAM-SHA-256), means that largest size. Base64 text longer than max_len needs is refused
 * before it is decoded. Never NULL. */
struct sasl_server *sasl_server_new(enum sasl_mech mech, size_t max_len);
/* Wipe every secret (decoded responses, password, SCRAM keys) and free. Accepts NULL; sets
 * *sasl NULL. */
void sasl_server_free(struct sasl_server **sasl);

/* Feed one client response, as the base64 text the client sent (without CRLF).
 * response_b64 on the first call: NULL = no initial response was given, "=" = an empty
 * initial response (RFC 4954 §4). On later calls it is the continuation line, where ""
 * is an empty response. "*" at any step cancels (RFC 4954 §4, RFC 3501 §6.2.2).
 * Returns:
 *  1 exchange complete. PLAIN/LOGIN: read the credentials with sasl_server_credentials()
 *    and verify them. SCRAM-SHA-256: already verified, sasl_server_outcome() tells the
 *    result (the protocol answers success or failure, after its penalty delay);
 *  0 send *challenge_r (base64 text, may be "") to the client and call again with its
 *    answer. *challenge_r is owned by sasl and valid until the next call or free;
 *  2 (SCRAM-SHA-256 only) the user is known now, its stored keys are needed: look the user
 *    sasl_server_username() up (auth_lookup_credentials() / auth_sasl_set_credentials()),
 *    call sasl_server_set_credentials(), then sasl_server_step(sasl, NULL, ...), which
 *    returns 0 with the server-first challenge (or -1 like any step);
 * -1 malformed response, limit exceeded or cancelled: *error_r is a static reason for the
 *    log (never contains client data); the protocol answers 501 / BAD / -ERR. The exchange
 *    is over; later calls return -1 too.
 * The challenge for PLAIN without initial response is "" (RFC 4616 §2); for LOGIN they are
 * "VXNlcm5hbWU6" ("Username:") and "UGFzc3dvcmQ6" ("Password:"). A LOGIN initial response is
 * taken as the user name. Identities must be valid UTF-8 without control characters
 * (they end up in logs); the password may hold any octet but NUL.
 *
 * SCRAM-SHA-256 (RFC 5802 §5, §7), step by step:
 *   step(client-first or NULL)  NULL: 0 with challenge "", the client-first comes next;
 *                               client-first: 2 "need credentials"
 *   set_credentials(keys or NULL); step(NULL)  0 with server-first "r=..,s=..,i=.."
 *   step(client-final)          proof right: 0 with server-final "v=...", which SMTP
 *                                 sends as "334 <v=...>" (RFC 4954 §4) and IMAP as "+ ";
 *                                 sasl_server_outcome() is 1 already;
 *                               proof wrong (or unknown user, no SCRAM keys, authzid
 *                                 not the user): 1 with sasl_server_outcome() 0 — no
 *                                 server-final, the protocol just answers failure;
 *   step("") after server-final 1 with sasl_server_outcome() 1. Anything but "" here
 *                               is -1 ("*" is a cancel).
 * Only GS2 headers "n,," and "y,," with an optional "a=" authzid are accepted: we offer no
 * channel binding (no -PLUS mechanism), so "p=" is refused with -1. An authzid must equal
 * the user name (ASCII case-insensitively), else the exchange fails at the end. Extensions
 * ("m=" and any other attribute) and malformed nonces, proofs or channel-binding data are
 * -1. An unknown user gets a fake salt that is stable per user name and per process and
 * the same iteration count, so server-first looks the same as for a real account. */
int sasl_server_step(struct sasl_server *sasl, const char *response_b64, const char **challenge_r,
                     const char **error_r) __attribute__((warn_unused_result));

/* After step returned 1 for PLAIN or LOGIN: the authorization id ("" if none was given),
 * the authentication id and the password, all NUL-terminated. Owned by sasl and wiped by
 * sasl_server_free(); copy what must outlive it. */
void sasl_server_credentials(struct sasl_server *sasl, const char **authzid_r,
                             const char **authcid_r, const char **password_r);

/* SCRAM-SHA-256, after step returned 2 (and until free): the authentication id the client
 * sent, decoded ("=2C" → ',', "=3D" → '='), valid UTF-8, 1..SASL_FIELD_MAX octets, not
 * lower-cased. Owned by sasl. */
const char *sasl_server_username(const struct sasl_server *sasl);

/* SCRAM-SHA-256, exactly once after step returned 2: the user's stored keys, or NULL when
 * there are none (unknown user, no SCRAM part in the stored credentials, locked account):
 * the exchange then goes on with a fake salt and fails at the end. keys is copied (and
 * wiped with sasl). */
void sasl_server_set_credentials(struct sasl_server *sasl, const struct password_scram *keys);

/* 1 the client proved it knows the password (SCRAM-SHA-256, from the step that returned
 * the server-final challenge on), 0 the exchange completed (step returned 1) but failed,
 * -1 no verdict: a mechanism that does not verify itself (PLAIN, LOGIN), or not decided
 * yet. */
int sasl_server_outcome(const struct sasl_server *sasl);

/* Test seam: use nonce (printable ASCII without ',', at most 64 characters) as the server's
 * part of the SCRAM nonce instead of a random one. Call before the server-first step. */
void sasl_server_set_test_nonce(struct sasl_server *sasl, const char *nonce);

#endif
