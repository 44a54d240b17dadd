/* Access control lists (RFC 4314): the rights letters, the identifiers the store keeps, and
 * the reads behind MYRIGHTS/GETACL and the shared namespace. Entries are written by the
 * writer (STORE_MAILBOX_ACL); the backend's part is in store_db_acl.c. */
#include "store/store_private.h"

#include <string.h>

#include "core/banned.h"

int store_acl_rights_parse(const char *text, unsigned *bits_r)
{
	unsigned bits = 0;
	for (const char *c = text; *c != '\0'; c++) {
		const char *at = strchr(STORE_ACL_LETTERS, *c);
		if (*c == 'c') /* RFC 4314 §2.1.1: the old "create" is k and x */
			bits |= STORE_ACL_CREATE | STORE_ACL_DELETE;
		else if (*c == 'd') /* the old "delete": e and t */
			bits |= STORE_ACL_EXPUNGE | STORE_ACL_DELMSG;
		else if (at != NULL)
			bits |= 1u << (at - STORE_ACL_LETTERS);
		else
			return -1;
	}
	*bits_r = bits;
	return 0;
}

void store_acl_rights_string(unsigned bits, char out[sizeof(STORE_ACL_LETTERS)])
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(STORE_ACL_LETTERS) - 1; i++)
		if ((bits & (1u << i)) != 0)
			out[n++] = STORE_ACL_LETTERS[i];
	out[n] = '\0';
}

bool store_acl_identifier_valid(const char *identifier)
{
	size_t len = strlen(identifier);
	if (strcmp(identifier, "anyone") == 0 || strcmp(identifier, "authenticated") == 0)
		return true;
	const char *at = strchr(identifier, '@');
	if (len == 0 || len > STORE_ACL_IDENTIFIER_MAX || at == NULL || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL)
		return false;
	for (const char *c = identifier; *c != '\0'; c++)
		if (*c <= ' ' || *c >= 0x7f || (*c >= 'A' && *c <= 'Z') || *c == '"' || *c == '\\')
			return false;
	return true;
}

bool store_acl_identifier_matches(const char *identifier, const char *address)
{
	if (strcmp(identifier, "anyone") == 0 || strcmp(identifier, "authenticated") == 0)
		return true;
	if (identifier[0] == '@') {
		const char *at = strchr(address, '@');
		return at != NULL && strcmp(at, identifier) == 0;
	}
	return strcmp(identifier, address) == 0;
}

int store_acl_get(struct store *store, uint64_t account_id, const char *mailbox,
                  void (*cb)(void *ctx, const char *identifier, unsigned rights), void *ctx)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	if (store_mailbox_norm(mailbox, norm) < 0)
		return 0;
	return store->v->acl_get(store, account_id, norm, cb, ctx);
}

struct store_acl_union {
	const char *address;
	unsigned rights;
};

static void store_acl_union_cb(void *ctx, const char *identifier, unsigned rights)
{
	struct store_acl_union *u = ctx;
	if (store_acl_identifier_matches(identifier, u->address))
		u->rights |= rights;
}

int store_acl_rights(struct store *store, uint64_t owner_id, const char *mailbox,
                     uint64_t account_id, const char *address, unsigned *rights_r)
{
	struct store_acl_union u = {address, 0};
	*rights_r = 0;
	if (owner_id == account_id) {
		int r = store_mailbox_exists(store, owner_id, mailbox);
		if (r == 1)
			*rights_r = STORE_ACL_ALL;
		return r;
	}
	int r = store_acl_get(store, owner_id, mailbox, store_acl_union_cb, &u);
	if (r == 1)
		*rights_r = u.rights;
	return r;
}

int store_acl_shared(struct store *store, uint64_t account_id, const char *address,
                     void (*cb)(void *ctx, uint64_t owner_id, const char *owner,
                                const char *mailbox, unsigned rights),
                     void *ctx)
{
	const char *at = strchr(address, '@');
	if (at == NULL)
		return 0;
	return store->v->acl_shared(store, account_id, address, at, cb, ctx);
}
