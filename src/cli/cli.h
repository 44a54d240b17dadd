/* The `posthorn` command line: each command is a function taking its own argv (the command
 * name first) and returning the process exit status. Errors go to stderr. */
#ifndef POSTHORN_CLI_CLI_H
#define POSTHORN_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "core/conf.h"
#include "store/store.h"

struct cli {
	const char *conf_path; /* -c or POSTHORN_CONFIG */
};

int cli_init(struct cli *cli, int argc, char **argv);
int cli_serve(struct cli *cli, int argc, char **argv);
int cli_check_config(struct cli *cli, int argc, char **argv);
int cli_domain(struct cli *cli, int argc, char **argv);
int cli_user(struct cli *cli, int argc, char **argv);
int cli_alias(struct cli *cli, int argc, char **argv);
int cli_mail(struct cli *cli, int argc, char **argv);
int cli_queue(struct cli *cli, int argc, char **argv);
int cli_dkim(struct cli *cli, int argc, char **argv);
int cli_dns(struct cli *cli, int argc, char **argv);
int cli_db(struct cli *cli, int argc, char **argv);
int cli_tlsrpt(struct cli *cli, int argc, char **argv);
int cli_dmarc(struct cli *cli, int argc, char **argv);
int cli_share(struct cli *cli, int argc, char **argv);
int cli_junk(struct cli *cli, int argc, char **argv);

/* Helpers shared by the commands. */
/* Load the configuration or print why not. NULL on error. */
struct conf *cli_load_conf(struct cli *cli);
/* Open the store of conf or print why not. NULL on error. */
struct store *cli_open_store(const struct conf *conf);
/* True when argv[1] is -h or --help (then usage is printed to stdout). */
bool cli_wants_help(int argc, char **argv, const char *usage);
/* Print "posthorn: " + message to stderr; returns 1 (the exit status). */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Read a password: one line from stdin when it is not a terminal, else prompt twice without
 * echo. Malloc'd (wipe and free it), NULL on error (reported). */
char *cli_read_password(void);
/* Parse a size with optional K/M/G suffix, or "unlimited"/"0". 0 ok, -1 bad. */
int cli_parse_size(const char *s, unsigned long long *size_r);

/* A daily report run from the command line (tlsrpt send, dmarc send): the loop it runs on,
 * and what the run's done callback (cli_report_done) says. */
struct net_loop;
struct cli_report_run {
	struct net_loop *loop;
	size_t sent;
	bool done;
	void *data; /* the kind's own (tlsrpt: the TLS context) */
};
void cli_report_done(void *ctx, size_t sent);
/* Claim op's day (STORE_QUEUE_TLSRPT_DAY or STORE_QUEUE_DMARC_DAY) for reporting: 0 when it
 * is claimed now, else the exit status after an error naming what ("tlsrpt") and the day
 * (text). */
int cli_report_claim(struct store *store, struct store_queue_op *op, const char *what,
                     const char *text);
/* What `tlsrpt show|send` and `dmarc show|send` work with: the UTC day (--day, else today,
 * or yesterday for send), as text, the conf and the store. */
struct cli_report_cmd {
	int64_t day;
	char text[11]; /* YYYY-MM-DD */
	struct conf *conf;
	struct store *store;
};
/* Parse day_text (NULL: the default) and open the conf and the store into c: 0, or the exit
 * status after an error naming what ("tlsrpt"), with nothing left open. */
int cli_report_open(struct cli *cli, const char *what, const char *day_text, bool send,
                    struct cli_report_cmd *c);
/* Flush stdout and close c's store (it waits for the report mails being stored); status. */
int cli_report_close(struct cli_report_cmd *c, int status);
/* What `tlsrpt send` and `dmarc send` do differently: their name, and their run. */
struct dns_resolver;
struct cli_report_kind {
	const char *what; /* "tlsrpt" */
	/* Start the day's run on r->loop (conf taken); the run. */
	void *(*start)(struct cli_report_run *r, struct dns_resolver *dns, struct store *store,
	               struct conf *conf, int64_t day);
	/* After the loop: cancel the run unless r->done; free what start kept in r->data. */
	void (*end)(struct cli_report_run *r, void *run);
};
/* Claim op's day (cli_report_claim()), then run the kind's reports of it and print how many
 * were sent; conf is taken. 0, or the exit status after an error. */
int cli_report_send(struct store *store, struct conf *conf, struct store_queue_op *op,
                    const struct cli_report_kind *kind, const char *text);

#endif
