/* `posthorn dkim generate|list|remove|sign`: DKIM keys in the data directory (see
 * mime/dkim_keys.h) and signing a message by hand with them. */
#include "cli/cli.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/crlf.h"
#include "core/xmalloc.h"
#include "mime/address.h"
#include "mime/dkim_keys.h"
#include "core/banned.h"

static const char dkim_usage[] =
    "usage: posthorn dkim generate DOMAIN [--selector S] [--algorithm rsa|ed25519]\n"
    "       posthorn dkim list [DOMAIN]\n"
    "       posthorn dkim remove DOMAIN SELECTOR\n"
    "       posthorn dkim sign [FILE]\n"
    "\n"
    "generate creates a signing key for one of our domains (RSA 2048 by default; the\n"
    "selector defaults to ph<yyyymm>, e.g. ph202612) and prints, as its last line, the\n"
    "TXT record to publish. Signing with it starts with the next message. A domain may\n"
    "have two keys at once (rotation: publish the new record, generate, wait for the DNS,\n"
    "then remove the old key); every key of the From: domain signs each message.\n"
    "list prints DOMAIN SELECTOR ALGORITHM CREATED per key. sign prints the message in\n"
    "FILE (or standard input) with CRLF line ends and its DKIM-Signature fields in front.\n";

/* The user the server runs as, when we are root and the configuration names one: key files
 * made by root must still be readable by the server. */
static int dkim_owner(const struct conf *conf, uid_t *uid_r, gid_t *gid_r)
{
	*uid_r = (uid_t)-1;
	*gid_r = (gid_t)-1;
	if (geteuid() != 0 || conf->run_user == NULL || conf->run_user[0] == '\0')
		return 0;
	struct passwd *pw = getpwnam(conf->run_user);
	if (pw == NULL)
		return cli_fail("user %s does not exist", conf->run_user);
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return 0;
}

/* Lower-cased copy of domain when it is a valid ASCII domain name, else NULL (reported). */
static char *dkim_domain_arg(const char *arg)
{
	char *d = xstrdup(arg);
	for (char *p = d; *p != '\0'; p++) {
		if ((unsigned char)*p >= 0x80) {
			cli_fail("%s: use the ASCII (xn--) form of the domain", arg);
			free(d);
			return NULL;
		}
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	}
	if (!address_domain_valid(d, strlen(d))) {
		cli_fail("%s is not a valid domain name", arg);
		free(d);
		return NULL;
	}
	return d;
}

/* ph<yyyymm>, or ph<yyyymm>b, c, ... when that is in use or was used (a removed selector's
 * record may still be in DNS caches, so it is not reused). */
static void dkim_default_selector(const char *data_dir, const char *domain, char *out, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	for (char letter = 'a'; letter <= 'z'; letter++) {
		snprintf(out, size, "ph%04d%02d%c", tm.tm_year + 1900, tm.tm_mon + 1, letter);
		if (letter == 'a')
			out[strlen(out) - 1] = '\0';
		if (!dkim_keys_selector_used(data_dir, domain, out))
			return;
	}
}

static int dkim_generate(const struct conf *conf, int argc, char **argv)
{
	const char *selector = NULL;
	enum dkim_algorithm alg = DKIM_ALG_RSA;
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--selector") == 0 && i + 1 < argc) {
			selector = argv[++i];
		} else if (strcmp(argv[i], "--algorithm") == 0 && i + 1 < argc) {
			if (dkim_algorithm_parse(argv[++i], &alg) < 0)
				return cli_fail("--algorithm is rsa or ed25519");
		} else {
			fputs(dkim_usage, stderr);
			return 2;
		}
	}
	if (selector != NULL && !dkim_keys_selector_valid(selector))
		return cli_fail("%s: a selector is 1 to 63 letters, digits and '-'", selector);
	char *domain = dkim_domain_arg(argv[2]);
	if (domain == NULL)
		return 1;
	struct store *store = cli_open_store(conf);
	int local = store != NULL ? store_domain_is_local(store, domain) : -1;
	store_close(&store);
	uid_t uid;
	gid_t gid;
	char sel[64];
	struct buf record, path, line;
	buf_init(&record, 4096);
	buf_init(&path, 8192);
	buf_init(&line, 8192);
	const char *error;
	int ret = 1;
	if (local < 0)
		;
	else if (local == 0)
		cli_fail("%s is not one of our domains (see `posthorn domain list`)", domain);
	else if (dkim_owner(conf, &uid, &gid) != 0)
		;
	else {
		if (selector == NULL)
			dkim_default_selector(conf->data_dir, domain, sel, sizeof(sel));
		else
			snprintf(sel, sizeof(sel), "%s", selector);
		if (dkim_keys_generate(conf->data_dir, domain, sel, alg, uid, gid, &record, &path,
		                       &error) < 0)
			cli_fail("dkim generate %s: %s", domain, error);
		else if (dkim_keys_zone_line(sel, domain, buf_cstr(&record), &line) < 0)
			cli_fail("dkim generate %s: record too long", domain);
		else {
			printf("created %s (%s key, selector %s)\n", buf_cstr(&path),
			       dkim_algorithm_name(alg), sel);
			printf("publish this TXT record in the zone of %s; signing starts with the "
			       "next message:\n%s\n",
			       domain, buf_cstr(&line));
			ret = 0;
		}
	}
	buf_free(&record);
	buf_free(&path);
	buf_free(&line);
	free(domain);
	return ret;
}

static void dkim_print_key(void *ctx, const struct dkim_key_info *info)
{
	(void)ctx;
	struct tm tm;
	char when[32];
	gmtime_r(&info->created, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s %s %s %s\n", info->domain, info->selector, dkim_algorithm_name(info->alg), when);
}

/* Read all of f (at most max octets). NULL (reported) on error or when too large. */
static unsigned char *dkim_read_all(FILE *f, const char *name, size_t max, size_t *len_r)
{
	size_t cap = 65536, len = 0;
	unsigned char *data = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap >= max) {
				free(data);
				cli_fail("%s: larger than limit_message_size", name);
				return NULL;
			}
			cap *= 2;
			data = xrealloc(data, cap);
		}
		size_t n = fread(data + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		free(data);
		cli_fail("cannot read %s: %s", name, strerror(errno));
		return NULL;
	}
	*len_r = len;
	return data;
}

static int dkim_sign_cmd(const struct conf *conf, int argc, char **argv)
{
	const char *name = argc == 3 ? argv[2] : "standard input";
	FILE *f = argc == 3 ? fopen(argv[2], "rb") : stdin;
	if (f == NULL)
		return cli_fail("cannot open %s: %s", argv[2], strerror(errno));
	size_t max = conf->limits.message_size > 0 ? (size_t)conf->limits.message_size : SIZE_MAX;
	size_t len;
	unsigned char *msg = dkim_read_all(f, name, max, &len);
	if (f != stdin)
		fclose(f);
	if (msg == NULL)
		return 1;
	/* print the form that is signed and sent: CRLF line ends */
	struct crlf st;
	crlf_init(&st);
	unsigned char *norm = xmalloc(2 * len + 3);
	size_t nlen = crlf_convert(&st, msg, len, norm);
	nlen += crlf_finish(&st, norm + nlen);
	free(msg);
	struct dkim_keys *keys = dkim_keys_new(conf->data_dir);
	struct buf sigs;
	buf_init(&sigs, 1 << 20);
	const char *error;
	int n = dkim_keys_sign(keys, norm, nlen, time(NULL), &sigs, &error);
	int ret = 0;
	if (n < 0)
		ret = cli_fail("dkim sign: %s", error);
	else if (n == 0)
		ret = cli_fail("dkim sign: no DKIM key for the domain of the From: field (or no "
		               "single From: domain)");
	else if (fwrite(sigs.data, 1, sigs.len, stdout) != sigs.len ||
	         fwrite(norm, 1, nlen, stdout) != nlen || fflush(stdout) != 0)
		ret = cli_fail("cannot write the signed message");
	buf_free(&sigs);
	dkim_keys_free(&keys);
	free(norm);
	return ret;
}

int cli_dkim(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, dkim_usage))
		return 0;
	const char *verb = argc >= 2 ? argv[1] : "";
	bool ok = (strcmp(verb, "generate") == 0 && argc >= 3) ||
	          (strcmp(verb, "list") == 0 && argc <= 3) ||
	          (strcmp(verb, "remove") == 0 && argc == 4) ||
	          (strcmp(verb, "sign") == 0 && argc <= 3);
	if (!ok) {
		fputs(dkim_usage, stderr);
		return 2;
	}
	struct conf *conf = cli_load_conf(cli);
	if (conf == NULL)
		return 1;
	const char *error;
	int ret = 0;
	if (strcmp(verb, "generate") == 0) {
		ret = dkim_generate(conf, argc, argv);
	} else if (strcmp(verb, "list") == 0) {
		char *domain = argc == 3 ? dkim_domain_arg(argv[2]) : NULL;
		if (argc == 3 && domain == NULL)
			ret = 1;
		else if (dkim_keys_list(conf->data_dir, domain, dkim_print_key, NULL, &error) < 0)
			ret = cli_fail("dkim list: %s", error);
		free(domain);
	} else if (strcmp(verb, "remove") == 0) {
		char *domain = dkim_domain_arg(argv[2]);
		int r =
		    domain != NULL ? dkim_keys_remove(conf->data_dir, domain, argv[3], &error) : -1;
		if (domain == NULL)
			ret = 1;
		else if (r < 0)
			ret = cli_fail("dkim remove %s %s: %s", domain, argv[3], error);
		else if (r == 0)
			ret = cli_fail("dkim remove: %s has no key with selector %s", domain,
			               argv[3]);
		else
			printf("removed the key %s of %s; messages are no longer signed with it "
			       "(keep its DNS record a few days for mail still in transit)\n",
			       argv[3], domain);
		free(domain);
	} else {
		ret = dkim_sign_cmd(conf, argc, argv);
	}
	conf_free(&conf);
	return ret;
}
