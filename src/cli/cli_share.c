/* `posthorn share grant|revoke|list`: the access control lists (RFC 4314) of shared folders,
 * the same entries IMAP's SETACL/DELETEACL/GETACL change and read (store.h, "access
 * control"). */
#include "cli/cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

static const char share_usage[] =
    "usage: posthorn share grant OWNER MAILBOX GRANTEE RIGHTS\n"
    "       posthorn share revoke OWNER MAILBOX GRANTEE\n"
    "       posthorn share list OWNER [MAILBOX]\n"
    "  OWNER is the account holding MAILBOX. GRANTEE is an address, @domain (every account\n"
    "  of the domain) or anyone. RIGHTS are letters of lrswipkxtea (RFC 4314: l lookup,\n"
    "  r read, s keep seen, w write flags, i insert, p post, k create below, x delete,\n"
    "  t delete messages, e expunge, a administer); +RIGHTS adds to the grantee's, -RIGHTS\n"
    "  takes away. The grantee sees the folder in IMAP as Shared/OWNER/MAILBOX.\n";

struct share_list {
	struct store *store;
	uint64_t owner;
	const char *mailbox; /* only this one, or NULL */
	int ret;
};

static void share_entry_print(void *ctx, const char *identifier, unsigned rights)
{
	const char *mailbox = ctx;
	char text[sizeof(STORE_ACL_LETTERS)];
	store_acl_rights_string(rights, text);
	printf("%s\t%s\t%s\n", mailbox, identifier, text);
}

static void share_mailbox_cb(void *ctx, const struct store_mailbox_info *info)
{
	struct share_list *l = ctx;
	if (!info->exists || (l->mailbox != NULL && strcmp(l->mailbox, info->name) != 0))
		return;
	if (store_acl_get(l->store, l->owner, info->name, share_entry_print,
	                  (void *)info->name) < 0)
		l->ret = -1;
}

/* Lower-case copy of text (malloc'd). */
static char *share_lower_dup(const char *text)
{
	char *s = xstrdup(text);
	for (char *c = s; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	return s;
}

static int share_write(struct store *store, uint64_t owner, const char *owner_address,
                       char **argv, bool grant)
{
	char *grantee = share_lower_dup(argv[4]);
	const char *text = grant ? argv[5] : "";
	enum store_acl_mode mode = text[0] == '+'   ? STORE_ACL_ADD
	                           : text[0] == '-' ? STORE_ACL_REMOVE
	                                            : STORE_ACL_SET;
	unsigned rights = 0;
	int ret = 0;
	char *lower_owner = share_lower_dup(owner_address);
	if (store_acl_rights_parse(text + (mode != STORE_ACL_SET), &rights) < 0)
		ret = cli_fail("share: bad rights %s (letters of %s)", text, STORE_ACL_LETTERS);
	else if (strcmp(grantee, lower_owner) == 0)
		ret = cli_fail("share: the owner always has every right");
	else if (!store_acl_identifier_valid(grantee))
		ret = cli_fail("share: bad grantee %s (an address, @domain or anyone)", argv[4]);
	if (ret == 0) {
		struct store_mailbox_op op = {
		    .action = STORE_MAILBOX_ACL,
		    .account_id = owner,
		    .name = argv[3],
		    .acl_identifier = grantee,
		    .acl_rights = rights,
		    .acl_mode = mode,
		};
		if (store_mailbox_change_wait(store, &op) < 0)
			ret = cli_fail("share %s %s %s: %s", argv[1], owner_address, argv[3], op.error);
	}
	free(lower_owner);
	free(grantee);
	return ret;
}

int cli_share(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, share_usage))
		return 0;
	const char *verb = argc >= 2 ? argv[1] : "";
	bool ok = (strcmp(verb, "grant") == 0 && argc == 6) ||
	          (strcmp(verb, "revoke") == 0 && argc == 5) ||
	          (strcmp(verb, "list") == 0 && (argc == 3 || argc == 4));
	if (!ok) {
		fputs(share_usage, stderr);
		return 2;
	}
	struct conf *conf = cli_load_conf(cli);
	if (conf == NULL)
		return 1;
	struct store *store = cli_open_store(conf);
	if (store == NULL) {
		conf_free(&conf);
		return 1;
	}
	uint64_t owner;
	int ret = 0;
	int found = store_account_lookup(store, argv[2], &owner, NULL, NULL);
	if (found <= 0) {
		ret = cli_fail("share %s %s: %s", verb, argv[2],
		               found < 0 ? "cannot look up the account" : "no such account");
	} else if (strcmp(verb, "list") == 0) {
		struct share_list l = {store, owner, argc == 4 ? argv[3] : NULL, 0};
		if (store_mailbox_list(store, owner, share_mailbox_cb, &l) < 0 || l.ret < 0)
			ret = cli_fail("share list %s: cannot read the store", argv[2]);
	} else {
		ret = share_write(store, owner, argv[2], argv, strcmp(verb, "grant") == 0);
	}
	store_close(&store);
	conf_free(&conf);
	return ret;
}
