/* `posthorn junk list`: the junk training records (store.h "SMTP policy state"): each
 * message a user moved or copied over IMAP into a \Junk folder (junk) or out of one (ham)
 * in the last 30 days, one a line: time (UTC), account, verdict, content address. Nothing
 * consumes them yet; a learning filter will. */
#include "cli/cli.h"

#include <string.h>
#include <time.h>

#include "core/banned.h"

static const char junk_usage[] =
    "usage: posthorn junk list      the junk training records of the last 30 days, oldest\n"
    "                               first: time, account, junk|ham, content address\n";

static void junk_list_row(void *ctx, const struct store_policy_junk_row *row)
{
	(void)ctx;
	time_t t = (time_t)row->at;
	struct tm tm;
	char when[32];
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s %s %s %s\n", when, row->address, row->verdict, row->sha256);
}

int cli_junk(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, junk_usage))
		return 0;
	if (argc != 2 || strcmp(argv[1], "list") != 0) {
		fputs(junk_usage, stderr);
		return 2;
	}
	struct conf *conf = cli_load_conf(cli);
	if (conf == NULL)
		return 1;
	struct store *store = cli_open_store(conf);
	conf_free(&conf);
	if (store == NULL)
		return 1;
	int status = 0;
	if (store_policy_junk_list(store, junk_list_row, NULL) < 0)
		status = cli_fail("junk: cannot read the training records");
	fflush(stdout);
	store_close(&store);
	return status;
}
