/* posthorn: command-line entry. `posthorn [-c CONF] COMMAND ...`; see `posthorn --help`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/banned.h"

#define POSTHORN_VERSION "0.1.0"
#define DEFAULT_CONF "/etc/posthorn/posthorn.conf"

static const char usage[] =
    "usage: posthorn [-c CONF] COMMAND [ARGS...]\n"
    "\n"
    "Posthorn is a mail server: SMTP (25), submission (587, 465), one data directory.\n"
    "The configuration file is CONF, $POSTHORN_CONFIG, or " DEFAULT_CONF ".\n"
    "\n"
    "commands:\n"
    "  init DIR --hostname HOST [--port-base N]   create a configuration, data and TLS cert\n"
    "  serve                                      run the server in the foreground\n"
    "  check-config                               validate the configuration\n"
    "  domain add|del|list ...                    manage local domains\n"
    "  user add|del|list|passwd|quota ...         manage accounts\n"
    "  alias add|del|list ...                     manage aliases\n"
    "  mail list|cat ...                          inspect stored mail\n"
    "  queue list|show|flush|retry|hold|release|delete ...\n"
    "                                             manage the outbound queue\n"
    "  dkim generate|list|remove|sign ...         DKIM signing keys\n"
    "  dns mx|a|aaaa|tlsa|txt NAME                look a name up as delivery would\n"
    "  db migrate|export|import|check [FILE]      the store as a whole: migrations, moves, checks\n"
    "  tlsrpt show|send ...                       TLS-RPT reports (RFC 8460)\n"
    "  dmarc show|send ...                        DMARC aggregate reports (RFC 7489)\n"
    "  share grant|revoke|list ...                shared folders (IMAP ACL, RFC 4314)\n"
    "  junk list                                  junk training records (moves to/from Junk)\n"
    "  --version                                  print the version\n"
    "\n"
    "`posthorn COMMAND --help` describes each command.\n";

struct cli_command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
};

static const struct cli_command commands[] = {
    {"init", cli_init},     {"serve", cli_serve}, {"check-config", cli_check_config},
    {"domain", cli_domain}, {"user", cli_user},   {"alias", cli_alias},
    {"mail", cli_mail},     {"queue", cli_queue}, {"dkim", cli_dkim},
    {"dns", cli_dns},       {"db", cli_db},       {"tlsrpt", cli_tlsrpt},
    {"share", cli_share},   {"junk", cli_junk},   {"dmarc", cli_dmarc},
};

int main(int argc, char **argv)
{
	struct cli cli = {.conf_path = getenv("POSTHORN_CONFIG")};
	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			cli.conf_path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			puts("posthorn " POSTHORN_VERSION);
			return 0;
		} else {
			fprintf(stderr, "posthorn: unknown option %s\n%s", argv[i], usage);
			return 2;
		}
	}
	if (cli.conf_path == NULL || cli.conf_path[0] == '\0')
		cli.conf_path = DEFAULT_CONF;
	if (i >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			return commands[k].run(&cli, argc - i, argv + i);
	fprintf(stderr, "posthorn: unknown command %s\n%s", argv[i], usage);
	return 2;
}
