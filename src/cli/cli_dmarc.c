/* `posthorn dmarc ...`: DMARC aggregate reports (RFC 7489 §7.2) from the command line.
 * `show` prints the rows collected for a UTC day (one a line, key=value), or with --xml the
 * report of each policy domain; `send` claims a day and mails its reports now, as the
 * server does once a day for the previous day (only with dmarc_report_send = yes, and once
 * per day: a day already claimed, by the server or an earlier `send`, is not sent again). */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "net/dns.h"
#include "net/server.h"
#include "smtp/dmarc_report.h"
#include "smtp/outbound.h"
#include "smtp/tlsrpt.h"
#include "core/banned.h"

static const char dmarc_usage[] =
    "usage: posthorn dmarc show [--day YYYY-MM-DD] [--xml] [DOMAIN]\n"
    "                                 the rows collected for the UTC day (default: today\n"
    "                                 so far), one a line, of every policy domain or of\n"
    "                                 DOMAIN; --xml: the report of each domain instead\n"
    "       posthorn dmarc send [--day YYYY-MM-DD]\n"
    "                                 send the day's reports now (default: yesterday) to\n"
    "                                 the rua= mailto: addresses of each domain's record;\n"
    "                                 needs dmarc_report_send = yes; a day is sent once\n";

/* A value for one line: tabs and newlines (dkim=, spf=) as ',' and ' '. */
static void dmarc_put(const char *name, const char *v)
{
	printf(" %s=\"", name);
	for (; *v != '\0'; v++) {
		char c = *v == '\n' ? ',' : *v == '\t' ? ' ' : *v;
		if (c == '"' || c == '\\')
			putchar('\\');
		putchar((unsigned char)c < 0x20 ? '?' : c);
	}
	putchar('"');
}

static void dmarc_show_row(void *ctx, const struct store_dmarc_row *row)
{
	(void)ctx;
	const struct store_dmarc_record *r = &row->r;
	printf("domain=%s ip=%s count=%" PRIu64 " disposition=%s dkim=%s spf=%s", r->policy_domain,
	       r->source_ip, row->count, r->disposition, r->dkim_aligned, r->spf_aligned);
	dmarc_put("header_from", r->header_from);
	dmarc_put("envelope_from", r->envelope_from);
	dmarc_put("reason", r->reason);
	dmarc_put("policy", r->policy);
	dmarc_put("rua", r->rua);
	dmarc_put("dkim_results", r->dkim);
	dmarc_put("spf_result", r->spf);
	putchar('\n');
}

struct dmarc_domains {
	char **v;
	size_t count;
};

static void dmarc_domain_add(void *ctx, const struct store_dmarc_row *row)
{
	struct dmarc_domains *d = ctx;
	if (d->count > 0 && strcmp(d->v[d->count - 1], row->r.policy_domain) == 0)
		return; /* rows come ordered by domain */
	d->v = xrealloc(d->v, (d->count + 1) * sizeof(char *));
	d->v[d->count++] = xstrdup(row->r.policy_domain);
}

static int dmarc_show_xml(struct store *store, const struct conf *conf, int64_t day,
                          const char *domain)
{
	struct dmarc_domains d = {0};
	if (store_dmarc_list(store, day, domain, dmarc_domain_add, &d) < 0)
		return cli_fail("dmarc: cannot read the results");
	int status = 0;
	for (size_t i = 0; i < d.count; i++) {
		struct buf out;
		buf_init(&out, DMARC_REPORT_XML_MAX);
		if (outbound_dmarc_report(store, conf, day, d.v[i], &out) < 0)
			status = cli_fail("dmarc: cannot build the report of %s", d.v[i]);
		else
			fputs(buf_cstr(&out), stdout);
		buf_free(&out);
		free(d.v[i]);
	}
	free(d.v);
	return status;
}

static void *dmarc_start(struct cli_report_run *r, struct dns_resolver *dns, struct store *store,
                         struct conf *conf, int64_t day)
{
	return outbound_dmarc_run_start(r->loop, dns, store, conf, day, NULL, cli_report_done, r);
}

static void dmarc_end(struct cli_report_run *r, void *run)
{
	struct outbound_dmarc_run *d = run;
	if (!r->done)
		outbound_dmarc_run_cancel(&d);
}

static const struct cli_report_kind dmarc_kind = {
    .what = "dmarc", .start = dmarc_start, .end = dmarc_end};

/* Claim day, then send its reports; conf is taken. */
static int dmarc_send(struct store *store, struct conf *conf, int64_t day, const char *text)
{
	if (!conf->dmarc_report_send) {
		conf_free(&conf);
		return cli_fail("dmarc: dmarc_report_send is off: no reports are sent");
	}
	struct store_queue_op op = {.action = STORE_QUEUE_DMARC_DAY,
	                            .id = (uint64_t)day,
	                            .dmarc_keep_days = conf->dmarc_report_keep_days};
	return cli_report_send(store, conf, &op, &dmarc_kind, text);
}

int cli_dmarc(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, dmarc_usage))
		return 0;
	if (argc < 2 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "send") != 0)) {
		fputs(dmarc_usage, stderr);
		return 2;
	}
	bool send = strcmp(argv[1], "send") == 0, xml = false;
	const char *day_text = NULL, *domain = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--day") == 0 && i + 1 < argc) {
			day_text = argv[++i];
		} else if (!send && strcmp(argv[i], "--xml") == 0) {
			xml = true;
		} else if (!send && domain == NULL && argv[i][0] != '-') {
			domain = argv[i];
		} else {
			fputs(dmarc_usage, stderr);
			return 2;
		}
	}
	struct cli_report_cmd c;
	int status = cli_report_open(cli, "dmarc", day_text, send, &c);
	if (status != 0)
		return status;
	if (send) {
		status = dmarc_send(c.store, c.conf, c.day, c.text);
	} else {
		if (xml)
			status = dmarc_show_xml(c.store, c.conf, c.day, domain);
		else if (store_dmarc_list(c.store, c.day, domain, dmarc_show_row, NULL) < 0)
			status = cli_fail("dmarc: cannot read the results");
		conf_free(&c.conf);
	}
	return cli_report_close(&c, status);
}
