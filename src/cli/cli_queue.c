/* `posthorn queue ...`: the outbound queue from the command line (list, show, flush, retry,
 * hold, release, delete). Changes go through the store's writer like the server's own; a
 * running server sees them by polling store_queue_next_due(). `queue list` prints one line
 * per entry starting with its id and nothing at all when the queue is empty (scripts and
 * tests rely on both). */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp/outbound.h"
#include "core/banned.h"

static const char queue_usage[] =
    "usage: posthorn queue list [--domain D]   one line per entry: ID STATE DOMAIN <FROM>\n"
    "                                          SIZE CREATED ATTEMPTS NEXT-ATTEMPT\n"
    "                                          PENDING/RECIPIENTS LAST-ERROR\n"
    "       posthorn queue show ID             an entry with its recipients and errors\n"
    "       posthorn queue flush [ID]          try every entry (or one) now\n"
    "       posthorn queue retry ID            try one entry now\n"
    "       posthorn queue hold ID             never try it until released\n"
    "       posthorn queue release ID          undo hold, try it now\n"
    "       posthorn queue delete ID [--silent]\n"
    "                                          remove it; without --silent the sender gets\n"
    "                                          a bounce\n";

static void queue_time(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Field text on one line: control characters and spaces-in-a-word stay readable. */
static void queue_field(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static const char *queue_state(bool held, const char *lease_owner, int64_t lease_until,
                               unsigned attempts)
{
	if (held)
		return "held";
	if (lease_owner != NULL && lease_until > (int64_t)time(NULL))
		return "active";
	return attempts > 0 ? "deferred" : "queued";
}

static void queue_print(void *ctx, const struct store_queue_info *q)
{
	(void)ctx;
	char created[32], next[32];
	queue_time(q->created, created, sizeof(created));
	queue_time(q->next_attempt, next, sizeof(next));
	printf("%" PRIu64 " %s ", q->id,
	       queue_state(q->held, q->lease_owner, q->lease_until, q->attempts));
	queue_field(q->domain);
	fputs(" <", stdout);
	queue_field(q->mail_from);
	printf("> %" PRIu64 " %s %u %s %u/%u ", q->size, created, q->attempts, next, q->pending,
	       q->rcpts);
	queue_field(q->last_error[0] != '\0' ? q->last_error : "-");
	putchar('\n');
}

static int queue_id(const char *s, uint64_t *id_r)
{
	char *end;
	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return cli_fail("bad queue id %s", s);
	unsigned long long v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v == 0 || v > INT64_MAX)
		return cli_fail("bad queue id %s", s);
	*id_r = (uint64_t)v;
	return 0;
}

static const char *const queue_status_names[] = {"pending", "delivered", "failed", "expired"};

static void queue_notify(unsigned notify)
{
	static const char *const names[] = {"SUCCESS", "FAILURE", "DELAY", "NEVER"};
	bool first = true;
	if (notify == 0)
		fputs("-", stdout);
	for (unsigned i = 0; i < 4; i++) {
		if (notify & (1u << i)) {
			printf("%s%s", first ? "" : ",", names[i]);
			first = false;
		}
	}
}

static void queue_show_rcpt(const struct store_queue_rcpt *r)
{
	char when[32] = "-";
	if (r->last_attempt > 0)
		queue_time(r->last_attempt, when, sizeof(when));
	fputs("recipient: <", stdout);
	queue_field(r->address);
	printf("> %s notify=", (unsigned)r->status < 4 ? queue_status_names[r->status] : "unknown");
	queue_notify(r->notify);
	fputs(" orcpt=", stdout);
	queue_field(r->orcpt != NULL ? r->orcpt : "-");
	printf(" last-attempt=%s remote-mta=", when);
	queue_field(r->remote_mta[0] != '\0' ? r->remote_mta : "-");
	fputs(" status=", stdout);
	queue_field(r->enhanced_status[0] != '\0' ? r->enhanced_status : "-");
	fputs(" error=", stdout);
	queue_field(r->last_error[0] != '\0' ? r->last_error : "-");
	putchar('\n');
}

static void queue_show_entry(const struct store_queue_entry *e)
{
	static const char *const rets[] = {"-", "FULL", "HDRS"};
	char created[32], next[32], lease[32] = "-";
	queue_time(e->created, created, sizeof(created));
	queue_time(e->next_attempt, next, sizeof(next));
	if (e->lease_owner != NULL)
		queue_time(e->lease_until, lease, sizeof(lease));
	printf("id: %" PRIu64 "\nstate: %s\nfrom: <", e->id,
	       queue_state(e->held, e->lease_owner, e->lease_until, e->attempts));
	queue_field(e->mail_from);
	fputs(">\ndomain: ", stdout);
	queue_field(e->domain);
	printf("\nsize: %" PRIu64 "\ncreated: %s\nattempts: %u\nnext-attempt: %s\n", e->size,
	       created, e->attempts, next);
	printf("smtputf8: %s\nbody: %s\nrequiretls: %s\n", e->smtputf8 ? "yes" : "no",
	       e->eightbit ? "8BITMIME" : "-", e->requiretls ? "yes" : "no");
	printf("ret: %s\nenvid: ", (unsigned)e->ret < 3 ? rets[e->ret] : "-");
	queue_field(e->envid != NULL ? e->envid : "-");
	printf("\ndelay-warning-sent: %s\nlease: ", e->delay_warned ? "yes" : "no");
	queue_field(e->lease_owner != NULL ? e->lease_owner : "-");
	printf(" until %s\nfile: ", lease);
	queue_field(e->path != NULL ? e->path : "(in the database)");
	putchar('\n');
	for (size_t i = 0; i < e->rcpt_count; i++)
		queue_show_rcpt(&e->rcpts[i]);
}

static int queue_show(struct store *store, uint64_t id)
{
	struct store_queue_entry *e;
	int r = store_queue_show(store, id, &e);
	if (r <= 0)
		return r < 0 ? cli_fail("cannot read the queue")
		             : cli_fail("no queue entry %" PRIu64, id);
	queue_show_entry(e);
	store_queue_entries_free(e, 1);
	return 0;
}

/* Run one queue operation and say what happened. */
static int queue_change(struct store *store, enum store_queue_action action, uint64_t id,
                        const char *done)
{
	struct store_queue_op op = {.action = action, .id = id};
	if (store_queue_wait(store, &op) < 0) {
		if (op.error != NULL && strcmp(op.error, STORE_ERROR_NO_ENTRY) == 0)
			return cli_fail("no queue entry %" PRIu64, id);
		return cli_fail("queue %s failed: %s", done, op.error);
	}
	if (action == STORE_QUEUE_FLUSH && id == 0)
		printf("flushed %zu entries\n", op.changed);
	else
		printf("%s %" PRIu64 "\n", done, id);
	store_queue_entries_free(op.entries, op.count);
	return 0;
}

/* `queue delete ID [--silent]`: without --silent the sender is told first (a failure DSN
 * for every pending recipient, quoting the message, which may go with the entry). */
static int queue_delete(struct store *store, const struct conf *conf, uint64_t id, bool silent)
{
	if (!silent) {
		struct store_queue_entry *e;
		int r = store_queue_show(store, id, &e);
		if (r <= 0)
			return r < 0 ? cli_fail("cannot read the queue")
			             : cli_fail("no queue entry %" PRIu64, id);
		const char *error = "";
		int b = outbound_bounce_entry(store, conf, e,
		                              "deleted from the queue by the postmaster", &error);
		store_queue_entries_free(e, 1);
		if (b < 0)
			return cli_fail("queue delete %" PRIu64
			                ": the bounce failed (%s); nothing deleted",
			                id, error);
		if (b == 1)
			printf("bounced %" PRIu64 " to its sender\n", id);
	}
	return queue_change(store, STORE_QUEUE_DELETE, id, "deleted");
}

/* The verb and its arguments: 0 with *verb_r, *id_r (0: none), *domain_r, *silent_r; 1
 * bad id (reported); -1 usage. */
static int queue_args(int argc, char **argv, const char **verb_r, uint64_t *id_r,
                      const char **domain_r, bool *silent_r)
{
	static const char *const one[] = {"show", "flush", "retry", "hold", "release", "delete"};
	const char *verb = argc >= 2 ? argv[1] : "", *id = NULL;
	*verb_r = verb;
	*id_r = 0;
	*domain_r = NULL;
	*silent_r = false;
	if (strcmp(verb, "list") == 0) {
		if (argc == 4 && strcmp(argv[2], "--domain") == 0)
			*domain_r = argv[3];
		return argc == 2 || *domain_r != NULL ? 0 : -1;
	}
	if (strcmp(verb, "flush") == 0 && argc == 2)
		return 0;
	/* delete ID --silent, or delete --silent ID */
	for (int i = 2; i < argc && strcmp(verb, "delete") == 0; i++) {
		if (strcmp(argv[i], "--silent") == 0 && !*silent_r)
			*silent_r = true;
		else if (id == NULL)
			id = argv[i];
		else
			return -1;
	}
	if (strcmp(verb, "delete") != 0 && argc == 3)
		id = argv[2];
	else if (strcmp(verb, "delete") != 0)
		return -1;
	for (size_t i = 0; id != NULL && i < sizeof(one) / sizeof(one[0]); i++) {
		if (strcmp(verb, one[i]) == 0)
			return queue_id(id, id_r) == 0 ? 0 : 1;
	}
	return -1;
}

static int queue_run(struct store *store, const struct conf *conf, const char *verb, uint64_t id,
                     const char *domain, bool silent)
{
	if (strcmp(verb, "list") == 0)
		return store_queue_list(store, domain, queue_print, NULL) < 0
		           ? cli_fail("cannot list the queue")
		           : 0;
	if (strcmp(verb, "show") == 0)
		return queue_show(store, id);
	if (strcmp(verb, "flush") == 0 || strcmp(verb, "retry") == 0)
		return queue_change(store, STORE_QUEUE_FLUSH, id,
		                    strcmp(verb, "flush") == 0 ? "flushed" : "retrying");
	if (strcmp(verb, "hold") == 0)
		return queue_change(store, STORE_QUEUE_HOLD, id, "held");
	if (strcmp(verb, "release") == 0)
		return queue_change(store, STORE_QUEUE_RELEASE, id, "released");
	return queue_delete(store, conf, id, silent);
}

int cli_queue(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, queue_usage))
		return 0;
	const char *verb, *domain;
	uint64_t id;
	bool silent;
	int r = queue_args(argc, argv, &verb, &id, &domain, &silent);
	if (r != 0) {
		if (r < 0)
			fputs(queue_usage, stderr);
		return r < 0 ? 2 : 1;
	}
	struct conf *conf = cli_load_conf(cli);
	if (conf == NULL)
		return 1;
	struct store *store = cli_open_store(conf);
	int ret = store == NULL ? 1 : queue_run(store, conf, verb, id, domain, silent);
	store_close(&store);
	conf_free(&conf);
	return ret;
}
