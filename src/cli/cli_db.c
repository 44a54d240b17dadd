/* `posthorn db ...`: the store's database as a whole: apply migrations, and move a store
 * between engines (SQLite and PostgreSQL) or machines with export and import. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

static const char db_usage[] =
    "usage: posthorn db migrate              apply schema migrations; print the version\n"
    "       posthorn db export [FILE]        write the whole store as a dump (stdout: -)\n"
    "       posthorn db import [FILE]        read a dump into this configuration's store,\n"
    "                                        which must be new (stdin: -)\n"
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

int cli_db(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, db_usage))
		return 0;
	const char *verb = argc >= 2 ? argv[1] : "";
	bool known = strcmp(verb, "migrate") == 0 || strcmp(verb, "export") == 0 ||
	             strcmp(verb, "import") == 0;
	if (!known || argc > 3 || (strcmp(verb, "migrate") == 0 && argc > 2)) {
		fputs(db_usage, stderr);
		return 2;
	}
	struct conf *conf = cli_load_conf(cli);
	if (conf == NULL)
		return 1;
	struct store *store = cli_open_store(conf);
	int ret = store == NULL ? 1 : db_run(store, verb, argc == 3 ? argv[2] : NULL);
	store_close(&store);
	conf_free(&conf);
	return ret;
}
