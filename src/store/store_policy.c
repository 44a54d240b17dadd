/* The store's SMTP policy state (store.h "SMTP policy state"): the reads, and the writes
 * that go through the writer thread without a caller waiting (store_writer_policy()). The
 * SQL is store_db_policy.c's. */
#include "store/store_db.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

int store_policy_junk_list(struct store *store,
                           void (*cb)(void *ctx, const struct store_policy_junk_row *row),
                           void *ctx)
{
	return store_db_policy_junk_list(store, cb, ctx);
}

int store_policy_greylist_get(struct store *store, const char *triplet,
                              struct store_policy_greylist *entry_r)
{
	return store_db_policy_greylist_get(store, triplet, entry_r);
}

int store_policy_greylist_count(struct store *store, const char *prefix, uint64_t *count_r)
{
	size_t n = strlen(prefix);
	if (n == 0 || (unsigned char)prefix[n - 1] == 0xff)
		return -1;
	char *to = xstrdup(prefix);
	to[n - 1] = (char)((unsigned char)to[n - 1] + 1); /* the first key after the prefix */
	int ret = store_db_policy_greylist_count(store, prefix, to, count_r);
	free(to);
	return ret;
}

void store_policy_greylist_note(struct store *store, const char *triplet, bool passed, int64_t now,
                                int64_t expired_before)
{
	struct store_commit_policy p = {
	    .action = STORE_POLICY_GREYLIST,
	    .now = now,
	    .triplet = xstrdup(triplet),
	    .passed = passed,
	    .expired_before = expired_before,
	};
	store_writer_policy(store, &p);
}

int store_policy_submissions(struct store *store, uint64_t account_id, int64_t since,
                             uint64_t *messages_r, uint64_t *new_recipients_r)
{
	return store_db_policy_submissions(store, account_id, since, messages_r, new_recipients_r);
}

int store_policy_recipient_known(struct store *store, uint64_t account_id, const char *address)
{
	return store_db_policy_recipient_known(store, account_id, address);
}

void store_policy_submission_note(struct store *store, uint64_t account_id,
                                  const char *const *recipients, size_t count, int64_t now)
{
	struct store_commit_policy p = {
	    .action = STORE_POLICY_SUBMISSION,
	    .now = now,
	    .account_id = account_id,
	    .recipients = xcalloc(count + 1, sizeof(char *)),
	    .count = count,
	};
	for (size_t i = 0; i < count; i++)
		p.recipients[i] = xstrdup(recipients[i]);
	store_writer_policy(store, &p);
}
