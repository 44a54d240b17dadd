/* Change notification between nodes that share one database (issue 10). In-process, the
 * writer tells the watches what a commit changed (store_watch.c). Several nodes on one
 * PostgreSQL also need to hear each other's commits: every commit sends one notification
 * per changed mailbox inside its transaction ("NODE ACCOUNT MODSEQ MAILBOX" on channel
 * "posthorn", so it is delivered only if the commit is), and one listening connection per
 * node, on its own thread outside any transaction, hands the other nodes' notifications to
 * the local watches. A notification is only a hint: sessions read what changed since
 * their last MODSEQ. Notifications missed while the listening connection was down are
 * never sent again, so after every (re)connect, and every DB_NOTIFY_POLL_S seconds to
 * bound staleness, every open watch is told to look. A driver without listen (SQLite:
 * one node) has none of this. The same thread renews the leases this node holds. */
#include "store/store_db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define DB_NOTIFY_CHANNEL "posthorn"
/* Every open watch looks at least this often (seconds). */
#define DB_NOTIFY_POLL_S 30
/* Held leases are renewed this often (seconds); their time to live is longer. */
#define DB_LEASE_RENEW_S 20
/* How long one wait for notifications lasts (ms): the thread's stop latency. */
#define DB_NOTIFY_WAIT_MS 250

bool store_db_notifies(const struct store_db *s)
{
	return s->sql->driver->listen != NULL;
}

int store_db_notify_emit(struct store_db *s, struct sql_conn *c,
                         const struct store_changes *changes, size_t from, const char **error_r)
{
	char payload[64 + STORE_MAILBOX_NAME_MAX + STORE_METADATA_NAME_MAX];
	for (size_t i = from; i < changes->count; i++) {
		const struct store_change *ch = &changes->v[i];
		/* Subscriptions and renames (for account watches, IMAP NOTIFY) carry a letter
		 * where the MODSEQ goes, which nodes before them ignore; a rename names the new
		 * and the old name separated by a tab (no valid name holds one). */
		if (ch->kind == STORE_CHANGE_SUBSCRIPTION || ch->kind == STORE_CHANGE_CREATE ||
		    ch->kind == STORE_CHANGE_ACL)
			snprintf(payload, sizeof(payload), "%s %" PRIu64 " %c %s", s->node,
			         ch->account_id,
			         ch->kind == STORE_CHANGE_CREATE ? 'C'
			         : ch->kind == STORE_CHANGE_ACL  ? 'A'
			                                         : 'S',
			         ch->mailbox);
		else if (ch->kind == STORE_CHANGE_RENAME || ch->kind == STORE_CHANGE_METADATA)
			snprintf(payload, sizeof(payload), "%s %" PRIu64 " %c %s\t%s", s->node,
			         ch->account_id, ch->kind == STORE_CHANGE_RENAME ? 'R' : 'M',
			         ch->mailbox, ch->old_name);
		else
			snprintf(payload, sizeof(payload), "%s %" PRIu64 " %" PRIu64 " %s", s->node,
			         ch->account_id, ch->highestmodseq, ch->mailbox);
		if (sql_exec(c, SQ_NOTIFY, error_r, "ss", DB_NOTIFY_CHANNEL, payload) < 0)
			return -1;
	}
	return 0;
}

/* One payload from another node into changes; our own and malformed ones are ignored. */
static void db_notify_payload(void *ctx, const char *payload)
{
	struct store_db *s = ctx;
	size_t node_len = strlen(s->node);
	if (strncmp(payload, s->node, node_len) == 0 && payload[node_len] == ' ')
		return;
	const char *p = strchr(payload, ' ');
	char *end;
	if (p == NULL)
		return;
	uint64_t account = strtoull(p + 1, &end, 10);
	if (*end != ' ')
		return;
	if ((end[1] == 'S' || end[1] == 'C' || end[1] == 'A') && end[2] == ' ') {
		store_watch_changed_kind(&s->notify_changes, account, end + 3,
		                         end[1] == 'S'   ? STORE_CHANGE_SUBSCRIPTION
		                         : end[1] == 'A' ? STORE_CHANGE_ACL
		                                         : STORE_CHANGE_CREATE,
		                         NULL);
		return;
	}
	if ((end[1] == 'R' || end[1] == 'M') && end[2] == ' ') {
		const char *tab = strchr(end + 3, '\t');
		if (tab == NULL)
			return;
		char *to = xstrndup(end + 3, (size_t)(tab - (end + 3)));
		store_watch_changed_kind(
		    &s->notify_changes, account, to,
		    end[1] == 'R' ? STORE_CHANGE_RENAME : STORE_CHANGE_METADATA, tab + 1);
		free(to);
		return;
	}
	uint64_t modseq = strtoull(end + 1, &end, 10);
	if (*end != ' ')
		return;
	store_watch_changed(&s->notify_changes, account, end + 1, modseq);
}

/* Sleep ms unless the store stops meanwhile. */
static void db_notify_pause(struct store_db *s, unsigned ms)
{
	for (unsigned t = 0; t < ms && !atomic_load(&s->notify_stop); t += 50) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void *db_notifier_main(void *arg)
{
	struct store_db *s = arg;
	const struct sql_driver *d = s->sql->driver;
	struct sql_conn *c = NULL;
	time_t last_all = 0, last_renew = time(NULL);
	unsigned failures = 0;
	const char *error;
	while (!atomic_load(&s->notify_stop)) {
		if (c == NULL) {
			c = sql_connect(s->sql, SQL_ROLE_READER, &error);
			if (c == NULL || d->listen(c, DB_NOTIFY_CHANNEL, &error) < 0) {
				if (failures++ == 0)
					log_error(
					    "store: cannot listen for other nodes' changes: %s",
					    error);
				sql_disconnect(c);
				c = NULL;
				db_notify_pause(s, 1000);
				continue;
			}
			if (failures > 0)
				log_info("store: listening for other nodes' changes again");
			failures = 0;
			last_all = 0; /* what was missed meanwhile: every view looks */
		}
		if (d->wait_notify(c, DB_NOTIFY_WAIT_MS, db_notify_payload, s, &error) < 0) {
			log_error("store: lost the connection that listens for other nodes: %s",
			          error);
			sql_disconnect(c);
			c = NULL;
		}
		time_t now = time(NULL);
		if (now - last_renew >= DB_LEASE_RENEW_S) {
			store_lease_renew_all(&s->store);
			last_renew = now;
		}
		if (now - last_all >= DB_NOTIFY_POLL_S) {
			store_watch_changed_all(&s->store, &s->notify_changes);
			last_all = now;
		}
		store_watch_notify(&s->store, &s->notify_changes);
	}
	sql_disconnect(c);
	return NULL;
}

int store_db_notify_start(struct store_db *s, const char **error_r)
{
	unsigned char r[8];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		*error_r = "getrandom failed";
		return -1;
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(s->node + 2 * i, 3, "%02x", r[i]);
	if (!store_db_notifies(s))
		return 0;
	atomic_init(&s->notify_stop, false);
	if (pthread_create(&s->notifier, NULL, db_notifier_main, s) != 0) {
		*error_r = "cannot start the notification thread";
		return -1;
	}
	s->store.notifier = s->notifier;
	s->store.notifier_started = true;
	return 0;
}

void store_db_notify_stop(struct store_db *s)
{
	if (!s->store.notifier_started)
		return;
	atomic_store(&s->notify_stop, true);
	pthread_join(s->notifier, NULL);
	s->store.notifier_started = false;
	store_watch_changes_free(&s->notify_changes);
}
