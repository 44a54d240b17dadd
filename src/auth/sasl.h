/* Server side of the SASL mechanisms PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login), shared by SMTP AUTH (RFC 4954), POP3 AUTH (RFC 5034) and
 * IMAP AUTHENTICATE (RFC 3501 §6.2.2). Pure: it takes the client's base64 text and returns
 * challenges and credentials; the protocol does the I/O and then calls auth_verify(). */
#ifndef POSTHORN_AUTH_SASL_H
#define POSTHORN_AUTH_SASL_H

#include <stddef.h>

enum sasl_mech { SASL_MECH_PLAIN, SASL_MECH_LOGIN };

/* Longest authzid, authcid and password we accept, in octets (RFC 4616 §2 says 255 for
 * PLAIN; LOGIN gets the same limits). */
#define SASL_FIELD_MAX 255

/* Parse a mechanism name, case-insensitively ("plain", "LOGIN"). 0 ok, -1 unknown. */
int sasl_mech_parse(const char *name, enum sasl_mech *mech_r) __attribute__((warn_unused_result));
/* The upper-case name of mech ("PLAIN"). Static. */
const char *sasl_mech_name(enum sasl_mech mech);
/* Space-separated list of every mechanism, "PLAIN LOGIN", for EHLO, CAPA and CAPABILITY
 * (the protocol decides whether to offer them, e.g. only after TLS). Static. */
const char *sasl_mech_list(void);

struct sasl_server;

/* Start an exchange. max_len caps each decoded client response in octets; 0, or anything
 * above the largest valid PLAIN message (3 * SASL_FIELD_MAX + 2 = 767), means 767. Base64
 * text longer than max_len needs is refused before it is decoded. Never NULL. */
struct sasl_server *sasl_server_new(enum sasl_mech mech, size_t max_len);
/* Wipe every secret (decoded responses, password) and free. Accepts NULL; sets *sasl NULL. */
void sasl_server_free(struct sasl_server **sasl);

/* Feed one client response, as the base64 text the client sent (without CRLF).
 * response_b64 on the first call: NULL = no initial response was given, "=" = an empty
 * initial response (RFC 4954 §4). On later calls it is the continuation line, where ""
 * is an empty response. "*" at any step cancels (RFC 4954 §4, RFC 3501 §6.2.2).
 * Returns:
 *  1 credentials complete: read them with sasl_server_credentials();
 *  0 send *challenge_r (base64 text, static, may be "") to the client and call again with
 *    its answer;
 * -1 malformed response, limit exceeded or cancelled: *error_r is a static reason for the
 *    log (never contains client data); the protocol answers 501 / BAD / -ERR. The exchange
 *    is over; later calls return -1 too.
 * The challenge for PLAIN without initial response is "" (RFC 4616 §2); for LOGIN they are
 * "VXNlcm5hbWU6" ("Username:") and "UGFzc3dvcmQ6" ("Password:"). A LOGIN initial response is
 * taken as the user name. Identities must be valid UTF-8 without control characters
 * (they end up in logs); the password may hold any octet but NUL. */
int sasl_server_step(struct sasl_server *sasl, const char *response_b64, const char **challenge_r,
                     const char **error_r) __attribute__((warn_unused_result));

/* After step returned 1: the authorization id ("" if none was given), the authentication
 * id and the password, all NUL-terminated. Owned by sasl and wiped by sasl_server_free();
 * copy what must outlive it. */
void sasl_server_credentials(struct sasl_server *sasl, const char **authzid_r,
                             const char **authcid_r, const char **password_r);

#endif
