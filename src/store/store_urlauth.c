/* URLAUTH (RFC 4467) with the INTERNAL mechanism: access keys per mailbox and per account,
 * kept in the store's meta rows (store_db_urlauth_key()), and HMAC-SHA256 tokens over the
 * URL's rump. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "store/store_db.h"
#include "core/banned.h"

/* The meta row names of the account's key and of mailbox's (by its MAILBOXID, so a new
 * mailbox of the same name has another key). 1, 0 no such mailbox, -1. */
static int store_urlauth_names(struct store *store, uint64_t account_id, const char *mailbox,
                               char account_r[96], char mailbox_r[160])
{
	snprintf(account_r, 96, "urlauth:%" PRIu64, account_id);
	if (mailbox == NULL)
		return 1;
	struct store_mailbox_status st;
	int r = store_mailbox_changes(store, account_id, mailbox, UINT64_MAX >> 1, NULL, NULL, NULL,
	                              &st);
	if (r == 1)
		snprintf(mailbox_r, 160, "urlauth:%" PRIu64 ":%s", account_id, st.mailboxid);
	return r;
}

int store_urlauth_token(struct store *store, uint64_t account_id, const char *mailbox,
                        const char *rump, size_t rump_len,
                        char token_r[STORE_URLAUTH_TOKEN_LEN + 1])
{
	char an[96], mn[160];
	int r = store_urlauth_names(store, account_id, mailbox, an, mn);
	if (r != 1)
		return r;
	int64_t keys[4];
	if (store_db_urlauth_key(store, an, false, &keys[0]) < 0 ||
	    store_db_urlauth_key(store, mn, false, &keys[2]) < 0)
		return -1;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)keys, sizeof(keys));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)rump, rump_len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(keys, sizeof(keys));
	sodium_bin2hex(token_r, STORE_URLAUTH_TOKEN_LEN + 1, mac, sizeof(mac));
	return 1;
}

int store_urlauth_verify(struct store *store, uint64_t account_id, const char *mailbox,
                         const char *rump, size_t rump_len, const char *token)
{
	char want[STORE_URLAUTH_TOKEN_LEN + 1];
	if (strlen(token) != STORE_URLAUTH_TOKEN_LEN)
		return 0;
	int r = store_urlauth_token(store, account_id, mailbox, rump, rump_len, want);
	if (r != 1)
		return r;
	char got[STORE_URLAUTH_TOKEN_LEN + 1];
	for (size_t i = 0; i <= STORE_URLAUTH_TOKEN_LEN; i++)
		got[i] = (char)tolower((unsigned char)token[i]);
	return sodium_memcmp(got, want, STORE_URLAUTH_TOKEN_LEN) == 0 ? 1 : 0;
}

int store_urlauth_reset(struct store *store, uint64_t account_id, const char *mailbox)
{
	char an[96], mn[160];
	int r = store_urlauth_names(store, account_id, mailbox, an, mn);
	if (r != 1)
		return r;
	int64_t key[2];
	return store_db_urlauth_key(store, mailbox == NULL ? an : mn, true, key) < 0 ? -1 : 1;
}
