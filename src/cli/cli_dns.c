/* `posthorn dns TYPE NAME`: one lookup through the same resolver outbound delivery uses
 * (libunbound with the dns_* settings), printed one record a line and a status line. For
 * users checking their DNS and for the tests. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "net/dns.h"
#include "net/server.h"
#include "core/banned.h"

static const char dns_usage[] =
    "usage: posthorn dns TYPE NAME\n"
    "\n"
    "Looks NAME up for TYPE (mx, a, aaaa, tlsa, txt) with the resolver settings of the\n"
    "configuration (dns_resolver, dns_trust_anchor, dns_timeout) and prints one line per\n"
    "record ('MX 10 mx.example.org', 'A 192.0.2.1', 'TLSA 3 1 1 <hex>', 'TXT \"...\"'),\n"
    "then 'status=ok|nxdomain|nodata|tempfail|bogus secure=yes|no ttl=SECONDS'.\n"
    "Exit status 0 when records were found, 1 otherwise.\n";

struct cli_dns_state {
	struct net_loop *loop;
	bool done;
	enum dns_status status;
};

/* TXT data as a quoted string: '"' and '\' escaped, other octets outside [ -~] as \DDD. */
static void cli_dns_print_txt(const struct dns_txt *txt)
{
	fputs("TXT \"", stdout);
	for (size_t i = 0; i < txt->len; i++) {
		unsigned char c = (unsigned char)txt->text[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\%03u", (unsigned)c);
		else
			putchar(c);
	}
	puts("\"");
}

static void cli_dns_print(const struct dns_record *r)
{
	switch (r->type) {
	case DNS_TYPE_MX:
		printf("MX %u %s\n", (unsigned)r->u.mx.preference,
		       r->u.mx.host[0] != '\0' ? r->u.mx.host : ".");
		break;
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		printf("%s %s\n", r->type == DNS_TYPE_A ? "A" : "AAAA", r->u.addr.text);
		break;
	case DNS_TYPE_TLSA:
		printf("TLSA %u %u %u ", (unsigned)r->u.tlsa.usage, (unsigned)r->u.tlsa.selector,
		       (unsigned)r->u.tlsa.matching_type);
		for (size_t i = 0; i < r->u.tlsa.data_len; i++)
			printf("%02x", r->u.tlsa.data[i]);
		putchar('\n');
		break;
	case DNS_TYPE_TXT:
		cli_dns_print_txt(&r->u.txt);
		break;
	case DNS_TYPE_PTR:
		printf("PTR %s\n", r->u.ptr);
		break;
	default:
		break;
	}
}

static void cli_dns_done(const struct dns_result *result, void *ctx)
{
	struct cli_dns_state *st = ctx;
	for (size_t i = 0; i < result->count; i++)
		cli_dns_print(&result->records[i]);
	printf("status=%s secure=%s ttl=%u\n", dns_status_name(result->status),
	       result->secure ? "yes" : "no", (unsigned)result->ttl);
	if (result->reason != NULL)
		fprintf(stderr, "posthorn: dns: %s %s: %s\n", dns_type_name(result->type),
		        result->name, result->reason);
	st->done = true;
	st->status = result->status;
	net_loop_stop(st->loop);
}

int cli_dns(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, dns_usage))
		return 0;
	if (argc != 3) {
		fputs(dns_usage, stderr);
		return 2;
	}
	uint16_t type = dns_type_parse(argv[1]);
	if (type == 0)
		return cli_fail("dns: unknown type %s (mx, a, aaaa, tlsa, txt)", argv[1]);
	struct conf *conf = cli_load_conf(cli);
	if (conf == NULL)
		return 1;
	struct cli_dns_state st = {.loop = net_loop_new()};
	const char *error;
	int status = 1;
	struct dns_resolver *res = dns_resolver_new(st.loop, conf, &error);
	if (res == NULL) {
		cli_fail("dns: %s", error);
	} else if (dns_lookup(res, argv[2], type, cli_dns_done, &st, &error) == NULL) {
		cli_fail("dns: %s: %s", argv[2], error);
	} else {
		net_loop_run(st.loop);
		if (st.done && st.status == DNS_STATUS_OK)
			status = 0;
	}
	fflush(stdout);
	dns_resolver_free(&res);
	net_loop_free(&st.loop);
	conf_free(&conf);
	return status;
}
