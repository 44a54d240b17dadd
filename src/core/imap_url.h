/* IMAP URLs (RFC 5092) naming one message or one part of it, as CATENATE (RFC 4469 §5),
 * URLAUTH (RFC 4467) and BURL (RFC 4468) use them: absolute
 *   imap://[user[;AUTH=x]@]host[:port]/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s]
 *          [/;PARTIAL=o[.l]][;EXPIRE=date-time][;URLAUTH=access:mech:token]
 * or, for CATENATE, the same from the path on ("/mailbox;UIDVALIDITY=n/;UID=n..."). Pure:
 * text in, fields out; percent-escapes of the user, mailbox and section are decoded. The
 * mailbox-list, search and relative forms without a mailbox are not accepted. */
#ifndef POSTHORN_CORE_IMAP_URL_H
#define POSTHORN_CORE_IMAP_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

/* Longest URL taken (RFC 4467 recommends servers accept at least 8000 octets of URL). */
#define IMAP_URL_MAX 8192

struct imap_url {
	const char *user; /* the userinfo's user, decoded; NULL when absent */
	/* The account the URL names: user when it holds an "@" ("joe%40example.org"), else
	 * user "@" host ("imap://joe@example.org/...", as imaptest and others write it); NULL
	 * without a user. */
	const char *owner;
	const char *host;                  /* NULL for the path form */
	unsigned port;                     /* 0 when absent */
	const char *mailbox;               /* decoded, never empty */
	uint32_t uidvalidity;              /* 0 when absent */
	uint32_t uid;                      /* never 0 */
	const char *section;               /* decoded, upper-cased; NULL when absent */
	bool partial;                      /* ;PARTIAL= given */
	uint64_t partial_off, partial_len; /* partial_len 0: to the end */
	bool expire;                       /* ;EXPIRE= given */
	int64_t expire_time;               /* its unix seconds */
	/* ;URLAUTH=access:mech:token (RFC 4467 §3): all NULL when absent. access is as sent
	 * ("submit+" user, "user+" user, "authuser", "anonymous"), decoded; mech as sent. */
	const char *access, *mech, *token;
	size_t rump_len; /* octets of the URL up to and including the access identifier (the
	                    URLAUTH "rump", RFC 4467 §2.1); 0 without ;URLAUTH= */
};

/* Parse url (NUL-terminated, at most IMAP_URL_MAX octets). Strings are allocated in arena.
 * 0 with *url_r filled, or -1 with *error_r a static text. */
int imap_url_parse(struct arena *arena, const char *url, struct imap_url *url_r,
                   const char **error_r) __attribute__((warn_unused_result));

#endif
