/* posthorn-load: the load generator of Posthorn's benchmarks (bench/run), for protocols that
 * Debian ships no load tool for. One process, one libevent loop, non-blocking, N concurrent
 * sessions, loopback targets only. This file is the command line; load.c the run and the
 * report; load_<mode>.c each protocol (pop3, imap). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "load.h"

#include "core/banned.h"

static const struct load_mode *const load_modes[] = {&load_pop3_mode, &load_imap_mixed_mode,
                                                     &load_imap_idle_mode};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: posthorn-load MODE --port N --users FILE [options]\n"
	    "\n"
	    "modes:\n"
	    "  pop3        per user: USER/PASS, STAT, RETR n + DELE n for every message, QUIT\n"
	    "  imap-mixed  per user: LOGIN, SELECT INBOX, FETCH 1:* (FLAGS RFC822.SIZE\n"
	    "              BODY.PEEK[HEADER.FIELDS (From Subject Date)]), FETCH n BODY.PEEK[]\n"
	    "              for n = 1..3, STORE +FLAGS (\\Seen), UID SEARCH UNSEEN, APPEND,\n"
	    "              STORE * +FLAGS.SILENT (\\Deleted), EXPUNGE, LOGOUT\n"
	    "  imap-idle   per user: LOGIN, SELECT INBOX, IDLE until the barrier is released,\n"
	    "              then DONE, LOGOUT (use with --barrier --go-stdin)\n"
	    "\n"
	    "options:\n"
	    "  --host ADDR        target address, loopback only (127.0.0.0/8, ::1, localhost);\n"
	    "                     default 127.0.0.1\n"
	    "  --port N           target port (required)\n"
	    "  --users FILE       one account per line: ADDRESS PASSWORD (the password is the\n"
	    "                     rest of the line); one session per line\n"
	    "  --concurrency N    sessions open at once (default: one per user)\n"
	    "  --timeout S        a session fails after S seconds without input (default 60)\n"
	    "  --barrier          log every session in first (pop3: up to STAT,\n"
	    "                     imap: up to SELECT, imap-idle: in IDLE), then let all\n"
	    "                     download at once; rates are then of the part after the\n"
	    "                     barrier (needs concurrency >= users)\n"
	    "  --go-stdin         at the barrier print \"barrier N\" and wait for a line on\n"
	    "                     stdin (a driver samples the server's CPU meanwhile)\n"
	    "  --cycles N         imap-mixed: repeat the part after SELECT (FETCH ... EXPUNGE)\n"
	    "                     N times per session before LOGOUT (default 1)\n"
	    "  --json             print the report as one JSON object\n"
	    "  -h, --help         this text\n"
	    "\n"
	    "Prints sessions, messages, octets, seconds, messages/s, MB/s (10^6 octets) and the\n"
	    "p50/p99 latency of every command. Exit status 0 when every session completed and\n"
	    "every message was complete, 1 when not, 2 on a usage error.\n");
}

static int die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int die_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "posthorn-load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(see posthorn-load --help)\n");
	va_end(ap);
	return 2;
}

/* A decimal number in [min, max]; -1 when text is not one. */
static int parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *n_r)
{
	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long n = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*n_r = n;
	return 0;
}

/* Fill the address of a loopback host; -1 for anything else (this tool never loads a
 * machine it does not run on). */
static int parse_target(const char *host, unsigned port, struct load_options *o)
{
	memset(&o->addr, 0, sizeof(o->addr));
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	struct sockaddr_in *sin = (struct sockaddr_in *)&o->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&o->addr;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		o->addr_len = sizeof(*sin);
		snprintf(o->target, sizeof(o->target), "%s:%u", host, port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		o->addr_len = sizeof(*sin6);
		snprintf(o->target, sizeof(o->target), "[%s]:%u", host, port);
		return 0;
	}
	return -1;
}

/* Read "ADDRESS PASSWORD" lines; blank lines and lines starting with '#' are skipped. */
static int read_users(const char *path, struct load_options *o)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "posthorn-load: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0, alloc = 0, lineno = 0;
	ssize_t len;
	int ret = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		size_t name_len = strcspn(line, " \t");
		if (name_len == 0 || line[name_len] == '\0' || line[name_len + 1] == '\0') {
			fprintf(stderr, "posthorn-load: %s:%zu: want ADDRESS PASSWORD\n", path,
			        lineno);
			ret = -1;
			break;
		}
		line[name_len] = '\0';
		if (o->user_count == alloc) {
			alloc = alloc == 0 ? 64 : 2 * alloc;
			struct load_user *u = realloc(o->users, alloc * sizeof(*u));
			if (u == NULL) {
				ret = -1;
				break;
			}
			o->users = u;
		}
		struct load_user *u = &o->users[o->user_count++];
		u->name = strdup(line);
		u->password = strdup(line + name_len + 1);
		if (u->name == NULL || u->password == NULL) {
			ret = -1;
			break;
		}
	}
	free(line);
	fclose(f);
	if (ret == 0 && o->user_count == 0) {
		fprintf(stderr, "posthorn-load: %s holds no accounts\n", path);
		ret = -1;
	}
	return ret;
}

static void free_users(struct load_options *o)
{
	for (size_t i = 0; i < o->user_count; i++) {
		free(o->users[i].name);
		free(o->users[i].password);
	}
	free(o->users);
	o->users = NULL;
	o->user_count = 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	struct load_options o = {.timeout_s = 60};
	for (size_t i = 0; i < sizeof(load_modes) / sizeof(load_modes[0]); i++)
		if (strcmp(argv[1], load_modes[i]->name) == 0)
			o.mode = load_modes[i];
	if (o.mode == NULL)
		return die_usage("unknown mode '%s' (have: pop3, imap-mixed, imap-idle)", argv[1]);

	static const struct option longopts[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"users", required_argument, NULL, 'u'},
	    {"concurrency", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 't'},
	    {"cycles", required_argument, NULL, 'C'},
	    {"json", no_argument, NULL, 'j'},
	    {"barrier", no_argument, NULL, 'b'},
	    {"go-stdin", no_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *host = "127.0.0.1", *users = NULL;
	unsigned long port = 0, concurrency = 0, timeout = 60, cycles = 1;
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			if (parse_uint(optarg, 1, 65535, &port) < 0)
				return die_usage("bad --port '%s'", optarg);
			break;
		case 'u':
			users = optarg;
			break;
		case 'c':
			if (parse_uint(optarg, 1, 100000, &concurrency) < 0)
				return die_usage("bad --concurrency '%s'", optarg);
			break;
		case 't':
			if (parse_uint(optarg, 1, 86400, &timeout) < 0)
				return die_usage("bad --timeout '%s'", optarg);
			break;
		case 'C':
			if (parse_uint(optarg, 1, 1000000, &cycles) < 0)
				return die_usage("bad --cycles '%s'", optarg);
			break;
		case 'j':
			o.json = true;
			break;
		case 'b':
			o.barrier = true;
			break;
		case 'g':
			o.go_stdin = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return die_usage("%s", "bad option");
		}
	}
	if (optind < argc)
		return die_usage("unexpected argument '%s'", argv[optind]);
	if (port == 0)
		return die_usage("%s", "--port is required");
	if (users == NULL)
		return die_usage("%s", "--users is required");
	if (parse_target(host, (unsigned)port, &o) < 0)
		return die_usage("refusing target '%s': loopback addresses only (127.0.0.0/8, ::1)",
		                 host);
	if (read_users(users, &o) < 0) {
		free_users(&o);
		return 2;
	}
	o.concurrency = concurrency > 0 ? (unsigned)concurrency : (unsigned)o.user_count;
	o.timeout_s = (unsigned)timeout;
	o.cycles = (unsigned)cycles;
	int r;
	if (o.go_stdin && !o.barrier)
		r = die_usage("%s", "--go-stdin needs --barrier");
	else if (o.barrier && o.concurrency < o.user_count)
		r = die_usage("--barrier needs --concurrency >= the %zu users", o.user_count);
	else
		r = load_run(&o);
	free_users(&o);
	return r < 0 ? 1 : r;
}
