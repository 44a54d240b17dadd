/* `posthorn mail list|cat|del`: looking at stored mail without a mail client (the
 * outbound queue is cli_queue.c's). */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/banned.h"

static const char mail_usage[] =
    "usage: posthorn mail list USER [MAILBOX]      one line per message: UID FLAGS SIZE\n"
    "                                              DATE <SENDER> SUBJECT (MAILBOX: INBOX)\n"
    "       posthorn mail cat USER MAILBOX UID     the stored bytes of one message\n"
    "       posthorn mail del USER MAILBOX UID...  remove messages (frees their quota)\n";

static void cli_time(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Field text on one line: control characters become '?'. */
static void cli_put_field(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static void mail_print(void *ctx, const struct store_message_info *m)
{
	(void)ctx;
	char date[32];
	cli_time(m->internal_date, date, sizeof(date));
	printf("%" PRIu32 " ", m->uid);
	if (m->flags == NULL || m->flags[0] == '\0')
		putchar('-');
	for (const char *f = m->flags; f != NULL && *f != '\0'; f++)
		putchar(*f == ' ' ? ',' : *f);
	printf(" %" PRIu64 " %s <", m->size, date);
	cli_put_field(m->mail_from);
	fputs("> ", stdout);
	cli_put_field(m->subject);
	putchar('\n');
}

static int mail_cat(struct store *store, char **argv)
{
	char *end;
	errno = 0;
	unsigned long uid = strtoul(argv[4], &end, 10);
	if (*end != '\0' || errno != 0 || uid == 0 || uid > UINT32_MAX)
		return cli_fail("bad UID %s", argv[4]);
	int fd;
	uint64_t size;
	int r = store_mail_open(store, argv[2], argv[3], (uint32_t)uid, &fd, &size);
	if (r < 0)
		return cli_fail("cannot read the message");
	if (r == 0)
		return cli_fail("no message %lu in %s of %s", uid, argv[3], argv[2]);
	char buf[65536];
	ssize_t n;
	int ret = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
			ret = cli_fail("write error");
			break;
		}
	}
	if (n < 0)
		ret = cli_fail("read error: %s", strerror(errno));
	close(fd);
	return ret;
}

static int mail_del(struct store *store, int argc, char **argv)
{
	uint64_t id;
	int r = store_account_lookup(store, argv[2], &id, NULL, NULL);
	if (r <= 0)
		return cli_fail(r < 0 ? "cannot look up %s" : "no such account %s", argv[2]);
	size_t n = (size_t)argc - 4;
	uint32_t *uids = calloc(n, sizeof(*uids));
	if (uids == NULL)
		return cli_fail("out of memory");
	for (size_t i = 0; i < n; i++) {
		char *end;
		errno = 0;
		unsigned long uid = strtoul(argv[4 + i], &end, 10);
		if (*end != '\0' || errno != 0 || uid == 0 || uid > UINT32_MAX) {
			free(uids);
			return cli_fail("bad UID %s", argv[4 + i]);
		}
		uids[i] = (uint32_t)uid;
	}
	struct store_expunge op = {
	    .account_id = id,
	    .mailbox = argv[3],
	    .uids = uids,
	    .uid_count = n,
	};
	int ret = store_expunge_wait(store, &op) < 0 ? cli_fail("%s", op.error) : 0;
	if (ret == 0)
		printf("removed %u messages (%llu octets)\n", op.expunged,
		       (unsigned long long)op.freed);
	free(uids);
	return ret;
}

int cli_mail(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, mail_usage))
		return 0;
	const char *verb = argc >= 2 ? argv[1] : "";
	bool list = strcmp(verb, "list") == 0 && (argc == 3 || argc == 4);
	bool cat = strcmp(verb, "cat") == 0 && argc == 5;
	bool del = strcmp(verb, "del") == 0 && argc >= 5;
	if (!list && !cat && !del) {
		fputs(mail_usage, stderr);
		return 2;
	}
	struct conf *conf = cli_load_conf(cli);
	if (conf == NULL)
		return 1;
	struct store *store = cli_open_store(conf);
	int ret = 1;
	if (store != NULL && list) {
		int r = store_mail_list(store, argv[2], argc == 4 ? argv[3] : "INBOX", mail_print,
		                        NULL);
		ret = r < 0 ? cli_fail("cannot list messages")
		      : r == 0
		          ? cli_fail("no mailbox %s for %s", argc == 4 ? argv[3] : "INBOX", argv[2])
		          : 0;
	} else if (store != NULL && cat) {
		ret = mail_cat(store, argv);
	} else if (store != NULL) {
		ret = mail_del(store, argc, argv);
	}
	store_close(&store);
	conf_free(&conf);
	return ret;
}
