/* `posthorn domain|user|alias ...`: managing domains, accounts and aliases in the store. */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auth/password.h"
#include "core/xmalloc.h"
#include "core/banned.h"

static const char domain_usage[] =
    "usage: posthorn domain add DOMAIN\n"
    "       posthorn domain del DOMAIN      (only when it has no accounts or aliases)\n"
    "       posthorn domain list\n";

static const char user_usage[] =
    "usage: posthorn user add ADDRESS [--quota SIZE]   (password: one line on stdin,\n"
    "                                                 or prompted on a terminal)\n"
    "       posthorn user del ADDRESS\n"
    "       posthorn user list [DOMAIN]\n"
    "       posthorn user passwd ADDRESS               (new password as for add)\n"
    "       posthorn user quota ADDRESS SIZE [--messages N]\n"
    "                                        (K/M/G suffixes; 0 = unlimited; --messages:\n"
    "                                        most messages in all mailboxes, 0 = unlimited)\n"
    "       posthorn user apop ADDRESS                 (set the POP3 APOP secret: read as\n"
    "                                                 the password for add)\n"
    "       posthorn user apop ADDRESS --clear         (remove it)\n"
    "  APOP (RFC 1939) is weak: it uses MD5 and the secret is stored in clear, so use a\n"
    "  secret that is not the account's password. It is off unless the POP3 server\n"
    "  enables it (pop3_apop = yes); accounts without a secret cannot use it.\n";

static const char alias_usage[] =
    "usage: posthorn alias add ALIAS TARGET   (ALIAS is local@domain or @domain for a\n"
    "                                          catch-all; TARGET is a local address)\n"
    "       posthorn alias del ALIAS [TARGET]\n"
    "       posthorn alias list\n";

/* Open conf + store for an admin command. 0 ok, 1 error (reported). */
static int admin_open(struct cli *cli, struct conf **conf_r, struct store **store_r)
{
	*conf_r = cli_load_conf(cli);
	if (*conf_r == NULL)
		return 1;
	*store_r = cli_open_store(*conf_r);
	if (*store_r == NULL) {
		conf_free(conf_r);
		return 1;
	}
	return 0;
}

static int admin_close(struct conf **conf, struct store **store, int ret)
{
	store_close(store);
	conf_free(conf);
	return ret;
}

static void domain_print(void *ctx, const char *domain)
{
	(void)ctx;
	puts(domain);
}

int cli_domain(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, domain_usage))
		return 0;
	bool list = argc == 2 && strcmp(argv[1], "list") == 0;
	bool add = argc == 3 && strcmp(argv[1], "add") == 0;
	bool del = argc == 3 && strcmp(argv[1], "del") == 0;
	if (!list && !add && !del) {
		fputs(domain_usage, stderr);
		return 2;
	}
	struct conf *conf;
	struct store *store;
	if (admin_open(cli, &conf, &store) != 0)
		return 1;
	const char *error;
	int ret = 0;
	if (list)
		ret =
		    store_domain_list(store, domain_print, NULL) < 0 ? cli_fail("cannot list") : 0;
	else if (add && store_domain_add(store, argv[2], &error) < 0)
		ret = cli_fail("domain add %s: %s", argv[2], error);
	else if (del && store_domain_del(store, argv[2], &error) < 0)
		ret = cli_fail("domain del %s: %s", argv[2], error);
	return admin_close(&conf, &store, ret);
}

static void user_print(void *ctx, const struct store_account_info *info)
{
	(void)ctx;
	char quota[32] = "unlimited";
	if (info->quota > 0)
		snprintf(quota, sizeof(quota), "%" PRIu64, info->quota);
	char limit[48] = ""; /* only when set: the line stays as it was for accounts without */
	if (info->message_limit > 0)
		snprintf(limit, sizeof(limit), " message_limit=%" PRIu64, info->message_limit);
	printf("%s quota=%s used=%" PRIu64 " messages=%" PRIu64 "%s\n", info->address, quota,
	       info->used, info->messages, limit);
}

static void wipe_free(char *p)
{
	if (p != NULL) {
		xmemzero(p, strlen(p));
		free(p);
	}
}

/* Read a password from stdin and hash it. NULL on error (reported). */
static char *user_new_hash(void)
{
	char *pw = cli_read_password();
	if (pw == NULL)
		return NULL;
	char *hash = password_hash_dup(pw);
	wipe_free(pw);
	if (hash == NULL)
		cli_fail("password hashing failed");
	return hash;
}

static int user_add(struct store *store, const struct conf *conf, int argc, char **argv)
{
	unsigned long long quota = conf->default_quota;
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--quota") == 0 && i + 1 < argc) {
			if (cli_parse_size(argv[++i], &quota) < 0)
				return cli_fail("bad quota %s", argv[i]);
		} else {
			fputs(user_usage, stderr);
			return 2;
		}
	}
	char *hash = user_new_hash();
	if (hash == NULL)
		return 1;
	const char *error;
	int ret = store_account_add(store, argv[2], hash, quota, &error) < 0
	              ? cli_fail("user add %s: %s", argv[2], error)
	              : 0;
	free(hash);
	return ret;
}

/* `user apop ADDRESS [--clear]`: the secret is read only once the account is known. */
static int user_apop(struct store *store, int argc, char **argv)
{
	const char *error;
	char *secret = NULL;
	int found = store_account_lookup(store, argv[2], NULL, NULL, NULL);
	if (found <= 0)
		return cli_fail("user apop %s: %s", argv[2],
		                found < 0 ? "cannot look up the account" : "no such account");
	if (argc == 3 && (secret = cli_read_password()) == NULL)
		return 1;
	int ret = store_account_set_apop(store, argv[2], secret, &error) < 0
	              ? cli_fail("user apop %s: %s", argv[2], error)
	              : 0;
	wipe_free(secret);
	return ret;
}

/* A message count: decimal digits, at most 2^53. */
static bool user_parse_count(const char *s, unsigned long long *n_r)
{
	unsigned long long n = 0;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || n > (1ull << 53) / 10)
			return false;
		n = n * 10 + (unsigned long long)(*s - '0');
	}
	*n_r = n;
	return true;
}

int cli_user(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, user_usage))
		return 0;
	const char *verb = argc >= 2 ? argv[1] : "";
	bool ok = (strcmp(verb, "add") == 0 && argc >= 3) ||
	          ((strcmp(verb, "del") == 0 || strcmp(verb, "passwd") == 0) && argc == 3) ||
	          (strcmp(verb, "list") == 0 && argc <= 3) ||
	          (strcmp(verb, "quota") == 0 &&
	           (argc == 4 || (argc == 6 && strcmp(argv[4], "--messages") == 0))) ||
	          (strcmp(verb, "apop") == 0 &&
	           (argc == 3 || (argc == 4 && strcmp(argv[3], "--clear") == 0)));
	if (!ok) {
		fputs(user_usage, stderr);
		return 2;
	}
	struct conf *conf;
	struct store *store;
	if (admin_open(cli, &conf, &store) != 0)
		return 1;
	const char *error;
	int ret = 0;
	unsigned long long quota, messages = 0;
	if (strcmp(verb, "add") == 0) {
		ret = user_add(store, conf, argc, argv);
	} else if (strcmp(verb, "del") == 0) {
		if (store_account_del(store, argv[2], &error) < 0)
			ret = cli_fail("user del %s: %s", argv[2], error);
	} else if (strcmp(verb, "list") == 0) {
		if (store_account_list(store, argc == 3 ? argv[2] : NULL, user_print, NULL) < 0)
			ret = cli_fail("cannot list accounts");
	} else if (strcmp(verb, "passwd") == 0) {
		char *hash = user_new_hash();
		if (hash == NULL)
			ret = 1;
		else if (store_account_set_password(store, argv[2], hash, &error) < 0)
			ret = cli_fail("user passwd %s: %s", argv[2], error);
		free(hash);
	} else if (strcmp(verb, "apop") == 0) {
		ret = user_apop(store, argc, argv);
	} else if (cli_parse_size(argv[3], &quota) < 0) {
		ret = cli_fail("bad quota %s", argv[3]);
	} else if (argc == 6 && !user_parse_count(argv[5], &messages)) {
		ret = cli_fail("bad message count %s", argv[5]);
	} else if (store_account_set_quota(store, argv[2], quota, &error) < 0) {
		ret = cli_fail("user quota %s: %s", argv[2], error);
	} else if (argc == 6 &&
	           store_account_set_message_limit(store, argv[2], messages, &error) < 0) {
		ret = cli_fail("user quota %s: %s", argv[2], error);
	}
	return admin_close(&conf, &store, ret);
}

static void alias_print(void *ctx, const char *alias, const char *target)
{
	(void)ctx;
	printf("%s %s\n", alias, target);
}

int cli_alias(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, alias_usage))
		return 0;
	const char *verb = argc >= 2 ? argv[1] : "";
	bool ok = (strcmp(verb, "add") == 0 && argc == 4) ||
	          (strcmp(verb, "del") == 0 && (argc == 3 || argc == 4)) ||
	          (strcmp(verb, "list") == 0 && argc == 2);
	if (!ok) {
		fputs(alias_usage, stderr);
		return 2;
	}
	struct conf *conf;
	struct store *store;
	if (admin_open(cli, &conf, &store) != 0)
		return 1;
	const char *error;
	int ret = 0;
	if (strcmp(verb, "add") == 0) {
		if (store_alias_add(store, argv[2], argv[3], &error) < 0)
			ret = cli_fail("alias add %s: %s", argv[2], error);
	} else if (strcmp(verb, "del") == 0) {
		if (store_alias_del(store, argv[2], argc == 4 ? argv[3] : NULL, &error) < 0)
			ret = cli_fail("alias del %s: %s", argv[2], error);
	} else if (store_alias_list(store, alias_print, NULL) < 0) {
		ret = cli_fail("cannot list aliases");
	}
	return admin_close(&conf, &store, ret);
}
