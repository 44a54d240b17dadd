/* Helpers shared by the command-line commands (see cli.h). */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "net/dns.h"
#include "net/server.h"
#include "smtp/tlsrpt.h"
#include "core/banned.h"

#define CLI_PASSWORD_MAX 1024

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("posthorn: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

bool cli_wants_help(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return true;
		}
	}
	return false;
}

struct conf *cli_load_conf(struct cli *cli)
{
	char *error = NULL;
	struct conf *conf = conf_load(cli->conf_path, &error);
	if (conf == NULL) {
		cli_fail("%s", error);
		free(error);
	}
	return conf;
}

struct store *cli_open_store(const struct conf *conf)
{
	struct store *store;
	const char *error;
	if (store_open_engine(conf->data_dir, conf->store_engine, conf->store_url, &store, &error) <
	    0) {
		cli_fail("cannot open the store in %s: %s", conf->data_dir, error);
		return NULL;
	}
	store_set_inline_max(store, conf->store_inline_max);
	return store;
}

/* One line from f without its line end; NULL at EOF or when longer than the limit. */
static char *cli_read_line(FILE *f)
{
	char *line = xmalloc(CLI_PASSWORD_MAX + 2);
	if (fgets(line, CLI_PASSWORD_MAX + 2, f) == NULL) {
		free(line);
		return NULL;
	}
	size_t n = strlen(line);
	if (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	else if (n > CLI_PASSWORD_MAX) {
		xmemzero(line, n);
		free(line);
		return NULL;
	}
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	return line;
}

static char *cli_prompt(const char *prompt)
{
	struct termios old, quiet;
	fputs(prompt, stderr);
	fflush(stderr);
	bool tty = tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	char *p = cli_read_line(stdin);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return p;
}

static void cli_wipe(char **p)
{
	if (*p != NULL) {
		xmemzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

char *cli_read_password(void)
{
	char *pw;
	if (!isatty(STDIN_FILENO)) {
		pw = cli_read_line(stdin);
	} else {
		pw = cli_prompt("Password: ");
		char *again = pw != NULL ? cli_prompt("Again: ") : NULL;
		if (again == NULL || strcmp(pw, again) != 0) {
			cli_wipe(&pw);
			cli_wipe(&again);
			cli_fail("passwords do not match");
			return NULL;
		}
		cli_wipe(&again);
	}
	if (pw == NULL || pw[0] == '\0') {
		cli_wipe(&pw);
		cli_fail("no password given on standard input (one line, at most %d octets)",
		         CLI_PASSWORD_MAX);
		return NULL;
	}
	return pw;
}

int cli_parse_size(const char *s, unsigned long long *size_r)
{
	if (strcmp(s, "unlimited") == 0) {
		*size_r = 0;
		return 0;
	}
	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	unsigned long long mul = 1;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mul = 1024ULL;
		end++;
		break;
	case 'M':
		mul = 1024ULL * 1024;
		end++;
		break;
	case 'G':
		mul = 1024ULL * 1024 * 1024;
		end++;
		break;
	default:
		return -1;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || (n != 0 && mul > ~0ULL / n))
		return -1;
	*size_r = n * mul;
	return 0;
}

void cli_report_done(void *ctx, size_t sent)
{
	struct cli_report_run *r = ctx;
	r->sent = sent;
	r->done = true;
	net_loop_stop(r->loop);
}

int cli_report_claim(struct store *store, struct store_queue_op *op, const char *what,
                     const char *text)
{
	if (store_queue_wait(store, op) < 0)
		return cli_fail("%s: %s", what, op->error);
	if (op->changed == 0)
		return cli_fail("%s: the reports of %s were sent (or claimed) already", what, text);
	return 0;
}

int cli_report_send(struct store *store, struct conf *conf, struct store_queue_op *op,
                    const struct cli_report_kind *kind, const char *text)
{
	int status = cli_report_claim(store, op, kind->what, text);
	if (status != 0) {
		conf_free(&conf);
		return status;
	}
	struct cli_report_run r = {.loop = net_loop_new()};
	const char *error;
	struct dns_resolver *dns = dns_resolver_new(r.loop, conf, &error);
	if (dns == NULL) {
		net_loop_free(&r.loop);
		conf_free(&conf);
		return cli_fail("%s: %s", kind->what, error);
	}
	void *run = kind->start(&r, dns, store, conf, (int64_t)op->id);
	net_loop_run(r.loop);
	kind->end(&r, run);
	dns_resolver_free(&dns);
	net_loop_free(&r.loop);
	printf("%zu report(s) sent for %s\n", r.sent, text);
	return 0;
}

int cli_report_open(struct cli *cli, const char *what, const char *day_text, bool send,
                    struct cli_report_cmd *c)
{
	*c = (struct cli_report_cmd){.day = (int64_t)time(NULL) / 86400 - (send ? 1 : 0)};
	if (day_text != NULL && tlsrpt_day_parse(day_text, &c->day) < 0)
		return cli_fail("%s: bad day %s (YYYY-MM-DD)", what, day_text);
	tlsrpt_day_text(c->day, c->text);
	c->conf = cli_load_conf(cli);
	if (c->conf == NULL)
		return 1;
	c->store = cli_open_store(c->conf);
	if (c->store == NULL) {
		conf_free(&c->conf);
		return 1;
	}
	return 0;
}

int cli_report_close(struct cli_report_cmd *c, int status)
{
	fflush(stdout);
	store_close(&c->store);
	return status;
}
