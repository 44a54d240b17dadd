/* The RFC 7208 test suite's driver, C side (tests/integration/test_spf_suite.py is the other):
 * reads a scenario's DNS answers and its cases from stdin, runs smtp/spf's evaluator on each
 * case over those answers, and prints "<id> <result> <explanation in hex, or ->" per case.
 * Lines: "Z" (a new scenario), "A name type status value..." (an answer: type A/AAAA/MX/PTR/
 * TXT, status OK/NX/TEMP, values in hex, "-" for ""), "T id ip sender helo" (a case; sender
 * and helo in hex). A name not answered is NXDOMAIN ("error." names time out). */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "driver_hex.h"
#include "smtp/spf.h"
#include "core/banned.h"

#define MAX_ANSWERS 4096
#define MAX_VALUES 64

struct zone_answer {
	char *name;
	int type;
	enum spf_dns_status status;
	size_t n;
	char *values[MAX_VALUES];
	size_t lens[MAX_VALUES];
};

static struct zone_answer zone[MAX_ANSWERS];
static size_t zone_n;

static char *unhex(const char *h)
{
	return driver_unhex(h, NULL);
}

static int type_of(const char *t)
{
	static const struct {
		const char *name;
		int type;
	} types[] = {{"A", SPF_DNS_A},
	             {"AAAA", SPF_DNS_AAAA},
	             {"MX", SPF_DNS_MX},
	             {"PTR", SPF_DNS_PTR},
	             {"TXT", SPF_DNS_TXT}};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(t, types[i].name) == 0)
			return types[i].type;
	return -1;
}

static void zone_clear(void)
{
	for (size_t i = 0; i < zone_n; i++) {
		free(zone[i].name);
		for (size_t k = 0; k < zone[i].n; k++)
			free(zone[i].values[k]);
	}
	zone_n = 0;
}

static void zone_add(char *line)
{
	char *save = NULL;
	char *name = strtok_r(line, " \n", &save);
	char *type = strtok_r(NULL, " \n", &save);
	char *status = strtok_r(NULL, " \n", &save);
	if (name == NULL || type == NULL || status == NULL || zone_n == MAX_ANSWERS)
		return;
	struct zone_answer *a = &zone[zone_n++];
	a->name = unhex(name);
	a->type = type_of(type);
	a->status = strcmp(status, "OK") == 0   ? SPF_DNS_OK
	            : strcmp(status, "NX") == 0 ? SPF_DNS_NXDOMAIN
	                                        : SPF_DNS_TEMPFAIL;
	a->n = 0;
	for (char *v; a->n < MAX_VALUES && (v = strtok_r(NULL, " \n", &save)) != NULL;) {
		a->values[a->n] = driver_unhex(v, &a->lens[a->n]);
		a->n++;
	}
}

/* The answer to name/type as a resolver would give it: labels over 63 octets time out,
 * empty labels are dropped (as the suite's own driver does). */
static void zone_answer(struct spf_check *c, const char *name, enum spf_dns_type type)
{
	char norm[1024];
	size_t o = 0, label = 0;
	bool toolong = false;
	for (const char *p = name; *p != '\0' && o + 1 < sizeof(norm); p++) {
		if (*p == '.') {
			if (label > 0)
				norm[o++] = '.';
			label = 0;
			continue;
		}
		toolong |= ++label > 63;
		norm[o++] = *p;
	}
	if (o > 0 && norm[o - 1] == '.')
		o--;
	norm[o] = '\0';
	struct spf_dns_answer ans = {.status = SPF_DNS_NXDOMAIN};
	unsigned char addrs[MAX_VALUES][16];
	if (toolong || strncasecmp(norm, "error.", 6) == 0)
		ans.status = SPF_DNS_TEMPFAIL;
	for (size_t i = 0; !toolong && i < zone_n; i++) {
		if (strcasecmp(zone[i].name, norm) != 0 || zone[i].type != (int)type)
			continue;
		ans.status = zone[i].status;
		ans.count = zone[i].n;
		ans.texts = (const char *const *)zone[i].values;
		ans.lens = zone[i].lens;
		if (type == SPF_DNS_A || type == SPF_DNS_AAAA) {
			for (size_t k = 0; k < zone[i].n; k++)
				inet_pton(type == SPF_DNS_A ? AF_INET : AF_INET6, zone[i].values[k],
				          addrs[k]);
			ans.addrs = (const unsigned char(*)[16])addrs;
			ans.texts = NULL;
			ans.lens = NULL;
		}
		break;
	}
	spf_check_answer(c, name, type, &ans);
}

static void run_case(char *line)
{
	char *save = NULL;
	char *id = strtok_r(line, " \n", &save);
	char *ip = strtok_r(NULL, " \n", &save);
	char *sender_hex = strtok_r(NULL, " \n", &save);
	char *helo_hex = strtok_r(NULL, " \n", &save);
	if (id == NULL || ip == NULL || sender_hex == NULL || helo_hex == NULL)
		return;
	char *sender = unhex(sender_hex), *helo = unhex(helo_hex);
	struct spf_request req = {.sender = sender,
	                          .helo = helo,
	                          .receiver = "receiver.test",
	                          .now = (int64_t)time(NULL)};
	req.family = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
	inet_pton(req.family, ip, req.ip);
	struct spf_check *c = spf_check_new(&req);
	enum spf_result r;
	for (int rounds = 0; (r = spf_check_run(c)) == SPF_PENDING && rounds < 1000; rounds++) {
		enum spf_dns_type type;
		const char *name = spf_check_need(c, &type);
		char copy[300];
		snprintf(copy, sizeof(copy), "%s", name);
		zone_answer(c, copy, type);
	}
	const char *problem;
	const char *exp = spf_check_explanation(c, &problem);
	printf("%s %s ", id, spf_result_name(r));
	if (exp == NULL || exp[0] == '\0')
		printf("-");
	for (const char *p = exp; p != NULL && *p != '\0'; p++)
		printf("%02x", (unsigned char)*p);
	printf(" %s\n", problem != NULL ? problem : "");
	spf_check_free(&c);
	free(sender);
	free(helo);
}

int main(void)
{
	static char line[1 << 20];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (line[0] == 'Z')
			zone_clear();
		else if (line[0] == 'A' && line[1] == ' ')
			zone_add(line + 2);
		else if (line[0] == 'T' && line[1] == ' ')
			run_case(line + 2);
	}
	zone_clear();
	return 0;
}
