/* Access control (RFC 4314) on the IMAP side: the shared namespace, where another account's
 * mailbox M of owner O is "Shared/O/M" (O its address, M its name there), and the rights a
 * session holds on a mailbox named by the client. The owner has every right on its own
 * mailboxes; on another account's, the store's entries decide (store_acl_rights()). */
#ifndef POSTHORN_IMAP_IMAP_ACL_H
#define POSTHORN_IMAP_IMAP_ACL_H

#include <stdbool.h>
#include <stdint.h>

#include "imap/imap_session.h"

/* The shared namespace's prefix (NAMESPACE's other users' namespace, delimiter '/'). */
#define IMAP_ACL_SHARED "Shared"
#define IMAP_ACL_SHARED_PREFIX "Shared/"

/* A mailbox as the client named it, resolved. */
struct imap_acl_mbox {
	uint64_t owner;   /* the account that holds it */
	const char *name; /* its name in that account (the command arena, or the client's) */
	const char *owner_address; /* shared: the owner's address (command arena); else NULL */
	unsigned rights;           /* STORE_ACL_* of this session on it */
	bool shared;               /* named through the shared namespace */
};

/* Is name (UTF-8) "Shared" or below it? */
bool imap_acl_is_shared(const char *name);
/* The session's account address, lower-case (the command arena). */
const char *imap_acl_user(struct imap_session *s);
/* Resolve the client's name (UTF-8). 1 with *mb_r: one of the session's own names (every
 * right; whether it exists is the command's business) or another account's mailbox on which
 * the session has the l right; 0: a shared name that names no mailbox the session may
 * look up (the client is told NONEXISTENT, as for a missing mailbox: RFC 4314 §4, nothing
 * leaks); -1 a store error. Reads the store for shared names only. */
int imap_acl_resolve(struct imap_session *s, const char *name, struct imap_acl_mbox *mb_r);
/* Answer tag with NO for a right the session lacks on a mailbox it may look up:
 * "[NOPERM]" (RFC 4314 §4 / RFC 5530), saying which right (one letter) is missing. */
void imap_acl_deny(struct imap_session *s, const char *tag, unsigned right);
/* Before a command in a selected mailbox of another account: read the session's rights on
 * it again when an ACL change was told since they were read (store_acl_version(): so a
 * SETACL or DELETEACL of the owner counts from the next command on) or they are older than
 * IMAP_ACL_REREAD_S; otherwise nothing is read.
 * Without l or r any more the mailbox is closed ("* OK [CLOSED]", RFC 7162 §3.2.11's code:
 * the session is back in the authenticated state). A mailbox gone meanwhile or a store error
 * changes nothing here (the change bus tells of a deletion). */
void imap_acl_refresh(struct imap_session *s);
/* The clock imap_acl_refresh() counts in: monotonic seconds. */
int64_t imap_acl_now(void);
/* Rights unread for this long are read again even without a change told (a notification
 * lost between nodes, an older node that does not send them). */
#define IMAP_ACL_REREAD_S 30
/* The client-visible name of mailbox name of owner (UTF-8, the command arena). */
const char *imap_acl_shared_name(struct imap_session *s, const char *owner, const char *name);

#endif
