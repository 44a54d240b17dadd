/* `posthorn tlsrpt ...`: TLS-RPT (RFC 8460) from the command line. `show` prints the JSON
 * report of each policy domain for a UTC day from the results collected so far (one report
 * a line); `send` claims a day and mails its reports now, as the server does once a day
 * for the previous day (only with tlsrpt_send = yes, and once per day: a day already
 * claimed, by the server or an earlier `send`, is not sent again). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "net/dns.h"
#include "net/server.h"
#include "net/tls.h"
#include "smtp/outbound.h"
#include "smtp/tlsrpt.h"
#include "core/banned.h"

static const char tlsrpt_usage[] =
    "usage: posthorn tlsrpt show [--day YYYY-MM-DD] [--domain D]\n"
    "                                 the JSON report (RFC 8460) of each policy domain, one\n"
    "                                 a line, for the UTC day (default: today so far)\n"
    "       posthorn tlsrpt send [--day YYYY-MM-DD]\n"
    "                                 send the day's reports now (default: yesterday) to\n"
    "                                 the addresses (mailto:, https:) of each domain's\n"
    "                                 _smtp._tls record;\n"
    "                                 needs tlsrpt_send = yes; a day is sent once\n";

static int tlsrpt_show(struct store *store, const struct conf *conf, int64_t day,
                       const char *domain)
{
	char **domains = NULL;
	size_t count = 0;
	if (domain != NULL) {
		domains = xmalloc(sizeof(char *));
		domains[0] = xstrdup(domain);
		count = 1;
	} else if (outbound_tlsrpt_domains(store, day, &domains, &count) < 0) {
		return cli_fail("tlsrpt: cannot read the results");
	}
	int status = 0;
	for (size_t i = 0; i < count; i++) {
		struct buf out;
		buf_init(&out, TLSRPT_REPORT_MAX);
		int r = outbound_tlsrpt_report(store, conf, day, domains[i], &out);
		if (r < 0)
			status = cli_fail("tlsrpt: cannot build the report of %s", domains[i]);
		else if (r == 1)
			printf("%s\n", buf_cstr(&out));
		buf_free(&out);
		free(domains[i]);
	}
	free(domains);
	return status;
}

static void *tlsrpt_start(struct cli_report_run *r, struct dns_resolver *dns, struct store *store,
                          struct conf *conf, int64_t day)
{
	const char *error;
	struct tls_ctx *tls = tls_client_ctx_new(conf->outbound_tls_ca_file, &error);
	if (tls == NULL)
		fprintf(stderr, "posthorn: tlsrpt: no TLS (%s): https: addresses are skipped\n",
		        error);
	r->data = tls;
	return outbound_tlsrpt_run_start(r->loop, dns, tls, store, conf, day, NULL, cli_report_done,
	                                 r);
}

static void tlsrpt_end(struct cli_report_run *r, void *run)
{
	struct outbound_tlsrpt_run *t = run;
	struct tls_ctx *tls = r->data;
	if (!r->done)
		outbound_tlsrpt_run_cancel(&t);
	tls_ctx_unref(&tls);
}

static const struct cli_report_kind tlsrpt_kind = {
    .what = "tlsrpt", .start = tlsrpt_start, .end = tlsrpt_end};

/* Claim day, then send its reports; conf is taken. */
static int tlsrpt_send(struct store *store, struct conf *conf, int64_t day, const char *text)
{
	if (!conf->tlsrpt_send) {
		conf_free(&conf);
		return cli_fail("tlsrpt: tlsrpt_send is off: no reports are sent");
	}
	struct store_queue_op op = {.action = STORE_QUEUE_TLSRPT_DAY,
	                            .id = (uint64_t)day,
	                            .tlsrpt_keep_days = conf->tlsrpt_keep_days};
	return cli_report_send(store, conf, &op, &tlsrpt_kind, text);
}

int cli_tlsrpt(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, tlsrpt_usage))
		return 0;
	if (argc < 2 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "send") != 0)) {
		fputs(tlsrpt_usage, stderr);
		return 2;
	}
	bool send = strcmp(argv[1], "send") == 0;
	const char *day_text = NULL, *domain = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--day") == 0 && i + 1 < argc) {
			day_text = argv[++i];
		} else if (!send && strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
			domain = argv[++i];
		} else {
			fputs(tlsrpt_usage, stderr);
			return 2;
		}
	}
	struct cli_report_cmd c;
	int status = cli_report_open(cli, "tlsrpt", day_text, send, &c);
	if (status != 0)
		return status;
	if (send) {
		status = tlsrpt_send(c.store, c.conf, c.day, c.text);
	} else {
		status = tlsrpt_show(c.store, c.conf, c.day, domain);
		conf_free(&c.conf);
	}
	return cli_report_close(&c, status);
}
