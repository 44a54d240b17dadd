/* The SMTP client's forward-confirmed reverse DNS name, as Postfix's smtpd_peername_lookup:
 * once per session, from connect, the PTR records of the client's address, then the A (or
 * AAAA) records of at most SMTP_RDNS_NAMES_MAX of the names; a name is confirmed when one of
 * its addresses is the client's. The lookups run on the session's loop and nothing waits
 * for them: whoever needs the name (the Received field, the milter, rspamd) takes it if the
 * answers are in, else "unknown". Setting: smtp_peername_lookup. The verdict over the answers
 * is a pure function (smtp_rdns_confirm()), unit-tested. */
#ifndef POSTHORN_SMTP_SMTP_RDNS_H
#define POSTHORN_SMTP_SMTP_RDNS_H

#include <stdbool.h>
#include <stddef.h>

#include "net/dns_packet.h"

struct smtp_session;

#define SMTP_RDNS_NAMES_MAX 2  /* PTR names whose addresses are looked up */
#define SMTP_RDNS_NAME_MAX 254 /* a host name: 253 octets and the NUL */

/* Postfix's {client_resolve}: confirmed; no usable PTR name; names whose addresses are not
 * the client's; a lookup failed for now (or the answers are not in yet). */
enum smtp_rdns_status {
	SMTP_RDNS_OK,
	SMTP_RDNS_FAIL,
	SMTP_RDNS_FORGED,
	SMTP_RDNS_TEMP,
};

/* One PTR name and the answer to its address lookup. */
struct smtp_rdns_candidate {
	const char *name;
	enum dns_status status;
	const struct dns_record *records; /* A or AAAA, count of them (status OK) */
	size_t count;
};

/* The verdict (pure): ptr_status is the PTR lookup's; c[0..n) the usable names it gave, in
 * order, with their address answers. OK with *match_r the index of the first name with an
 * address equal to the client's (family AF_INET or AF_INET6, ip 4 or 16 octets); else TEMP
 * when a lookup failed for now (PTR or a name's, which might have matched), FAIL without
 * names, FORGED otherwise. */
enum smtp_rdns_status smtp_rdns_confirm(int family, const unsigned char *ip,
                                        enum dns_status ptr_status,
                                        const struct smtp_rdns_candidate *c, size_t n,
                                        size_t *match_r) __attribute__((warn_unused_result));
/* Is a PTR record's name usable as a host name (pure)? Letters, digits, '-' and '_' in
 * labels of 1 to 63 octets, at most 253 octets, not a numeric address (Postfix refuses
 * "numeric host names", which would pass for a literal). */
bool smtp_rdns_name_usable(const char *name);
/* The name of addr's PTR records ("4.3.2.1.in-addr.arpa", nibbles under "ip6.arpa") into out
 * (at least 74 octets). */
void smtp_rdns_reverse_name(int family, const unsigned char *ip, char *out, size_t size);
/* "OK", "FAIL", "FORGED", "TEMP" (Postfix's spelling of {client_resolve}). */
const char *smtp_rdns_status_name(enum smtp_rdns_status status);

/* Start the lookups of s's client (port 25 and submission, when smtp_peername_lookup is
 * on); the result is logged once (event=rdns). */
void smtp_rdns_start(struct smtp_session *s);
/* The confirmed name, or "unknown" (off, no answer yet, not confirmed). */
const char *smtp_rdns_name(const struct smtp_session *s);
/* The PTR name (Postfix's reverse name): the confirmed one, else the first usable one, or
 * "unknown". */
const char *smtp_rdns_ptr(const struct smtp_session *s);
/* The verdict so far (TEMP while the answers are not in; FAIL when off). */
enum smtp_rdns_status smtp_rdns_status(const struct smtp_session *s);
/* Cancel what is pending and forget the answers (the session ends). */
void smtp_rdns_free(struct smtp_session *s);

#endif
