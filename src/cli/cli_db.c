/* `posthorn db ...`: the store's database as a whole: apply migrations, move a store
 * between engines (SQLite and PostgreSQL) or machines with export and import, and prune old
 * QRESYNC tombstones by hand, and check the store's consistency. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/banned.h"

static const char db_usage[] =
    "usage: posthorn db migrate              apply schema migrations; print the version\n"
    "       posthorn db export [FILE]        write the whole store as a dump (stdout: -)\n"
    "       posthorn db import [FILE]        read a dump into this configuration's store,\n"
    "                                        which must be new (stdin: -)\n"
    "       posthorn db prune [--older-than SECONDS]\n"
    "                                        remove the QRESYNC tombstones of messages\n"
    "                                        expunged longer ago than imap_expunge_retention\n"
    "                                        (or SECONDS; 0 = all), as the server does hourly\n"
    "       posthorn db check                check the store's consistency: the database's\n"
    "                                        own check, UIDs below UIDNEXT, entries and their\n"
    "                                        messages, used bytes, message files and their\n"
    "                                        hashes; prints each finding, exit 1 if any\n"
    "\n"
    "To move a store to PostgreSQL: `posthorn -c old.conf db export dump`, then\n"
    "`posthorn init NEW --hostname H --store postgresql --store-url URL` and\n"
    "`posthorn -c NEW/posthorn.conf db import dump`. Clients keep their UIDs, UIDVALIDITY\n"
    "and flags; nothing is downloaded again.\n";

static int db_run(struct store *store, const char *verb, const char *file)
{
	const char *error;
	if (strcmp(verb, "migrate") == 0) {
		printf("schema version %d\n", store_schema_version(store));
		return 0;
	}
	bool out = strcmp(verb, "export") == 0;
	bool std = file == NULL || strcmp(file, "-") == 0;
	FILE *fp = std ? (out ? stdout : stdin) : fopen(file, out ? "wx" : "r");
	if (fp == NULL)
		return cli_fail("cannot open %s: %s", file, strerror(errno));
	int ret = out ? store_export(store, fp, &error) : store_import(store, fp, &error);
	if (!std && fclose(fp) != 0 && ret == 0) {
		error = strerror(errno);
		ret = -1;
	}
	if (ret < 0)
		return cli_fail("%s: %s", verb, error);
	if (!out)
		fprintf(stderr, "posthorn: imported\n");
	return 0;
}

/* `db prune`: passes of STORE_PRUNE_LIMIT until none is left; prints what went. */
static int db_prune(struct store *store, const struct conf *conf, const char *older_than)
{
	uint64_t age = conf->imap_expunge_retention;
	if (older_than != NULL) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(older_than, &end, 10);
		if (errno != 0 || end == older_than || *end != '\0' || older_than[0] == '-' ||
		    v > (unsigned long long)INT32_MAX * 16)
			return cli_fail("--older-than: expected a number of seconds");
		age = v;
	} else if (age == 0) {
		puts("imap_expunge_retention is 0: tombstones are kept for ever");
		return 0;
	}
	int64_t cutoff = (int64_t)time(NULL) - (int64_t)age;
	uint64_t removed = 0, mailboxes = 0;
	struct store_prune_result r;
	do {
		if (store_tombstones_prune_wait(store, cutoff, STORE_PRUNE_LIMIT, &r) < 0)
			return cli_fail("prune failed (see the log)");
		removed += r.removed;
		mailboxes += r.mailboxes;
	} while (r.more);
	printf("removed %llu tombstones (%llu mailbox floors raised)\n",
	       (unsigned long long)removed, (unsigned long long)mailboxes);
	return 0;
}

static void db_check_problem(void *ctx, const char *text)
{
	(void)ctx;
	printf("%s\n", text);
}

/* `db check`: 0 consistent, 1 findings or the store unreadable. */
static int db_check(struct store *store)
{
	const char *error;
	int n = store_check(store, db_check_problem, NULL, &error);
	if (n < 0)
		return cli_fail("check: %s", error);
	if (n > 0) {
		printf("%d problems\n", n);
		return 1;
	}
	puts("ok");
	return 0;
}

int cli_db(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, db_usage))
		return 0;
	const char *verb = argc >= 2 ? argv[1] : "";
	bool prune = strcmp(verb, "prune") == 0;
	bool check = strcmp(verb, "check") == 0;
	bool known = strcmp(verb, "migrate") == 0 || strcmp(verb, "export") == 0 ||
	             strcmp(verb, "import") == 0 || prune || check;
	if (!known || (!prune && argc > 3) ||
	    ((check || strcmp(verb, "migrate") == 0) && argc > 2) ||
	    (prune && argc != 2 && !(argc == 4 && strcmp(argv[2], "--older-than") == 0))) {
		fputs(db_usage, stderr);
		return 2;
	}
	struct conf *conf = cli_load_conf(cli);
	if (conf == NULL)
		return 1;
	struct store *store = cli_open_store(conf);
	int ret = store == NULL ? 1
	          : prune       ? db_prune(store, conf, argc == 4 ? argv[3] : NULL)
	          : check       ? db_check(store)
	                        : db_run(store, verb, argc == 3 ? argv[2] : NULL);
	store_close(&store);
	conf_free(&conf);
	return ret;
}
