/* The DKIM verifier's driver for tests/integration/test_dkim_verify.py: verifies the message
 * in the file named by argv[1] with mime/dkim_verify, answering key lookups from stdin lines
 * "K name status hex" (status OK, NX or TEMP; hex the record, "-" for none; a name not
 * listed is NXDOMAIN), and prints one line per signature:
 * "result domain selector testing body_length problem...". With --arc before the file name it
 * verifies the ARC chain with mime/arc_verify instead and prints one line:
 * "result instances sealer problem...". */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "driver_hex.h"
#include "mime/arc_verify.h"
#include "mime/dkim_verify.h"
#include "core/banned.h"

#define KEYS_MAX 64

struct key {
	char name[300];
	enum dkim_dns_status status;
	char *text;
	size_t len;
};

static struct key keys[KEYS_MAX];
static size_t nkeys;

static void read_keys(void)
{
	static char line[65536];
	while (nkeys < KEYS_MAX && fgets(line, sizeof(line), stdin) != NULL) {
		char name[300], status[8], hex[sizeof(line)];
		if (sscanf(line, "K %299s %7s %65000s", name, status, hex) != 3)
			continue;
		struct key *k = &keys[nkeys++];
		snprintf(k->name, sizeof(k->name), "%s", name);
		k->status = strcmp(status, "OK") == 0   ? DKIM_DNS_OK
		            : strcmp(status, "NX") == 0 ? DKIM_DNS_NXDOMAIN
		                                        : DKIM_DNS_TEMPFAIL;
		k->len = strcmp(hex, "-") == 0 ? 0 : strlen(hex) / 2;
		k->text = malloc(k->len + 1);
		for (size_t i = 0; i < k->len; i++) {
			unsigned v;
			sscanf(hex + 2 * i, "%2x", &v);
			k->text[i] = (char)v;
		}
		k->text[k->len] = '\0';
	}
}

/* The key record named name as a lookup answer. */
static const struct key *key_of(const char *name)
{
	for (size_t i = 0; i < nkeys; i++)
		if (strcasecmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static void check_dkim(const unsigned char *msg, size_t len)
{
	struct dkim_verify *v = dkim_verify_new(msg, len, 8, (int64_t)time(NULL));
	while (dkim_verify_run(v) == 0) {
		const char *need = dkim_verify_need(v);
		const struct key *k = key_of(need);
		const char *texts[1] = {k != NULL ? k->text : ""};
		size_t lens[1] = {k != NULL ? k->len : 0};
		dkim_verify_answer(v, need, k != NULL ? k->status : DKIM_DNS_NXDOMAIN, texts, lens,
		                   k != NULL && k->len > 0 ? 1 : 0);
	}
	for (size_t i = 0; i < dkim_verify_count(v); i++) {
		const struct dkim_signature_result *r = dkim_verify_result(v, i);
		printf("%s %s %s %d %d %s\n", dkim_result_name(r->result), r->domain, r->selector,
		       r->testing, r->body_length, r->problem != NULL ? r->problem : "-");
	}
	dkim_verify_free(&v);
}

static void check_arc(const unsigned char *msg, size_t len)
{
	struct arc_verify *v = arc_verify_new(msg, len, (int64_t)time(NULL));
	while (arc_verify_run(v) == 0) {
		const char *need = arc_verify_need(v);
		const struct key *k = key_of(need);
		const char *texts[1] = {k != NULL ? k->text : ""};
		size_t lens[1] = {k != NULL ? k->len : 0};
		arc_verify_answer(v, need, k != NULL ? k->status : DKIM_DNS_NXDOMAIN, texts, lens,
		                  k != NULL && k->len > 0 ? 1 : 0);
	}
	unsigned n;
	const char *problem, *sealer;
	enum arc_result r = arc_verify_result(v, &n, &problem, &sealer);
	printf("%s %u %s %s\n", arc_result_name(r), n, *sealer != '\0' ? sealer : "-",
	       problem != NULL ? problem : "-");
	arc_verify_free(&v);
}

int main(int argc, char **argv)
{
	bool arc = argc == 3 && strcmp(argv[1], "--arc") == 0;
	if (argc != 2 && !arc)
		return 2;
	FILE *f = fopen(argv[argc - 1], "rb");
	if (f == NULL)
		return 2;
	static unsigned char msg[1 << 22];
	size_t len = fread(msg, 1, sizeof(msg), f);
	fclose(f);
	read_keys();
	if (arc)
		check_arc(msg, len);
	else
		check_dkim(msg, len);
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i].text);
	return 0;
}
