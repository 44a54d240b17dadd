/* The shared namespace and the rights of a session on a mailbox (RFC 4314); see imap_acl.h. */
#include "imap/imap_acl.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/banned.h"

bool imap_acl_is_shared(const char *name)
{
	size_t n = strlen(IMAP_ACL_SHARED);
	return strncmp(name, IMAP_ACL_SHARED, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

const char *imap_acl_user(struct imap_session *s)
{
	char *u = arena_strdup(s->cmd, s->user != NULL ? s->user : "");
	for (char *c = u; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	return u;
}

int imap_acl_resolve(struct imap_session *s, const char *name, struct imap_acl_mbox *mb_r)
{
	*mb_r =
	    (struct imap_acl_mbox){.owner = s->account_id, .name = name, .rights = STORE_ACL_ALL};
	if (!imap_acl_is_shared(name))
		return 1;
	/* "Shared/owner@domain/mailbox": the namespace root and the owner levels are no
	 * mailboxes. */
	const char *owner = name + strlen(IMAP_ACL_SHARED_PREFIX);
	const char *sl = name[strlen(IMAP_ACL_SHARED)] == '\0' ? NULL : strchr(owner, '/');
	if (sl == NULL || sl == owner || sl[1] == '\0')
		return 0;
	char *address = arena_strndup(s->cmd, owner, (size_t)(sl - owner));
	for (char *c = address; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	uint64_t owner_id;
	int r = store_account_lookup(s->server->store, address, &owner_id, NULL, NULL);
	if (r <= 0)
		return r;
	unsigned rights = 0;
	r = store_acl_rights(s->server->store, owner_id, sl + 1, s->account_id, imap_acl_user(s),
	                     &rights);
	if (r <= 0)
		return r;
	if ((rights & STORE_ACL_LOOKUP) == 0)
		return 0;
	*mb_r = (struct imap_acl_mbox){.owner = owner_id,
	                               .name = sl + 1,
	                               .owner_address = address,
	                               .rights = rights,
	                               .shared = true};
	return 1;
}

void imap_acl_deny(struct imap_session *s, const char *tag, unsigned right)
{
	char letters[sizeof(STORE_ACL_LETTERS)];
	store_acl_rights_string(right, letters);
	imap_tagged(s, tag, "NO", "[NOPERM] Permission denied (right %s needed)", letters);
}

const char *imap_acl_shared_name(struct imap_session *s, const char *owner, const char *name)
{
	size_t a = strlen(IMAP_ACL_SHARED_PREFIX), b = strlen(owner), c = strlen(name);
	char *out = arena_alloc(s->cmd, a + b + c + 2);
	memcpy(out, IMAP_ACL_SHARED_PREFIX, a);
	memcpy(out + a, owner, b);
	out[a + b] = '/';
	memcpy(out + a + b + 1, name, c + 1);
	return out;
}

int64_t imap_acl_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec;
}

void imap_acl_refresh(struct imap_session *s)
{
	unsigned rights = 0;
	if (s->state != IMAP_STATE_SELECTED || s->mailbox_owner == s->account_id)
		return;
	uint64_t version = store_acl_version(s->server->store); /* before the read */
	int64_t now = imap_acl_now();
	if (version == s->acl_version && now - s->acl_read_at < IMAP_ACL_REREAD_S)
		return;
	if (store_acl_rights(s->server->store, s->mailbox_owner, s->mailbox, s->account_id,
	                     imap_acl_user(s), &rights) != 1)
		return;
	s->acl_version = version;
	s->acl_read_at = now;
	unsigned need = STORE_ACL_LOOKUP | STORE_ACL_READ;
	if ((rights & need) == need) {
		s->rights = rights;
		return;
	}
	imap_session_unselect(s);
	imap_send(s, "* OK [CLOSED] Access to the selected mailbox was withdrawn");
}
