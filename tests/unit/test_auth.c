/* Unit tests for auth/auth: verification through a fake store lookup (ok, wrong password,
 * unknown user, locked account, lookup error, authzid), the per-IP penalty schedule with a
 * fake clock, 20 concurrent requests on 2 workers, and the synchronous side for SCRAM:
 * credential look-ups, handing keys to a SCRAM exchange (RFC 7677 §3 messages), and
 * auth_record_result() feeding the same penalty table. Most failures use the cheap authzid
 * mismatch so that only a handful of argon2 hashes run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_cache.h"
#include "auth/auth_login.h"
#include "auth/password.h"
#include "auth/sasl.h"
#include "core/base64.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* ---- fake store ---- */

struct fake_store {
	char *alice_hash; /* credentials for "secret", with SCRAM keys */
	char *user_cred;  /* argon2 part of alice_hash + the RFC 7677 SCRAM keys ("pencil") */
	char *old_cred;   /* argon2 part of alice_hash alone: made before SCRAM support */
	char *carol_cred; /* changeable ("user passwd"), under lock; NULL = account removed */
	pthread_mutex_t lock;
	unsigned lookups;
	char last_user[64];
};

static int fake_lookup(void *ctx, const char *username, uint64_t *account_id_r,
                       char **password_hash_r)
{
	struct fake_store *fs = ctx;
	pthread_mutex_lock(&fs->lock);
	fs->lookups++;
	snprintf(fs->last_user, sizeof(fs->last_user), "%s", username);
	pthread_mutex_unlock(&fs->lock);
	if (strcmp(username, "alice") == 0) {
		*account_id_r = 42;
		*password_hash_r = xstrdup(fs->alice_hash);
		return 1;
	}
	if (strcmp(username, "user") == 0) {
		*account_id_r = 43;
		*password_hash_r = xstrdup(fs->user_cred);
		return 1;
	}
	if (strcmp(username, "old") == 0) {
		*account_id_r = 44;
		*password_hash_r = xstrdup(fs->old_cred);
		return 1;
	}
	if (strcmp(username, "carol") == 0) {
		pthread_mutex_lock(&fs->lock);
		char *cred = fs->carol_cred != NULL ? xstrdup(fs->carol_cred) : NULL;
		pthread_mutex_unlock(&fs->lock);
		if (cred == NULL)
			return 0;
		*account_id_r = 45;
		*password_hash_r = cred;
		return 1;
	}
	if (strcmp(username, "locked") == 0) {
		*account_id_r = 7;
		*password_hash_r = xstrdup("!");
		return 1;
	}
	if (strcmp(username, "tmpfail") == 0)
		return -1;
	return 0;
}

/* APOP secrets: alice has "tanstaaf" (RFC 1939 §7's example), others none. */
static int fake_apop_lookup(void *ctx, const char *username, uint64_t *account_id_r,
                            char **secret_r)
{
	(void)ctx;
	if (strcmp(username, "alice") == 0) {
		*account_id_r = 42;
		*secret_r = xstrdup("tanstaaf");
		return 1;
	}
	return strcmp(username, "tmpfail") == 0 ? -1 : 0;
}

static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void)
{
	return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

struct fixture {
	struct fake_store store;
	struct auth *auth;
};

static int group_setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	fx->store.alice_hash = password_hash_dup("secret");
	if (fx->store.alice_hash == NULL)
		return -1;
	size_t argon2_len = strcspn(fx->store.alice_hash, " ");
	fx->store.old_cred = xstrndup(fx->store.alice_hash, argon2_len);
	char cred[512];
	snprintf(cred, sizeof(cred),
	         "%s SCRAM-SHA-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	         "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	         fx->store.old_cred);
	fx->store.user_cred = xstrdup(cred);
	pthread_mutex_init(&fx->store.lock, NULL);
	fx->auth = auth_new(fake_lookup, &fx->store, 2);
	auth_set_clock(fx->auth, fake_clock);
	auth_set_apop_lookup(fx->auth, fake_apop_lookup, NULL);
	*state = fx;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *fx = *state;
	auth_free(&fx->auth);
	assert_null(fx->auth);
	pthread_mutex_destroy(&fx->store.lock);
	free(fx->store.alice_hash);
	free(fx->store.user_cred);
	free(fx->store.old_cred);
	free(fx->store.carol_cred);
	free(fx);
	return 0;
}

static int verify(struct fixture *fx, const char *authzid, const char *user, const char *pw,
                  const char *ip, unsigned *delay_r, uint64_t *id_r)
{
	struct auth_request req = {
	    .authzid = authzid, .username = user, .password = pw, .remote_ip = ip};
	int ret = auth_verify_wait(fx->auth, &req);
	assert_int_equal(ret, req.result);
	if (delay_r != NULL)
		*delay_r = req.delay_ms;
	if (id_r != NULL)
		*id_r = req.account_id;
	return ret;
}

/* A cheap failure (no hash): authzid differs from the user. */
static unsigned cheap_failure(struct fixture *fx, const char *ip)
{
	unsigned delay;
	assert_int_equal(verify(fx, "bob", "alice", "secret", ip, &delay, NULL), 0);
	return delay;
}

/* ---- tests ---- */

static void test_ok(void **state)
{
	struct fixture *fx = *state;
	uint64_t id = 0;
	unsigned delay = 99;
	assert_int_equal(verify(fx, "", "Alice", "secret", "192.0.2.1", &delay, &id), 1);
	assert_int_equal(id, 42);
	assert_int_equal(delay, 0);
	assert_string_equal(fx->store.last_user, "alice"); /* lower-cased before lookup */
	/* authzid equal to the user (case-insensitively) is no proxy authorization. */
	assert_int_equal(verify(fx, "ALICE", "alice", "secret", NULL, NULL, &id), 1);
	assert_int_equal(verify(fx, NULL, "alice", "secret", NULL, NULL, &id), 1);
}

static void test_wrong_password(void **state)
{
	struct fixture *fx = *state;
	unsigned delay = 99;
	uint64_t id = 99;
	assert_int_equal(verify(fx, "", "alice", "Secret", "192.0.2.2", &delay, &id), 0);
	assert_int_equal(delay, 1000); /* the delay applies from the first failure */
	assert_int_equal(id, 0);
}

static void test_unknown_user(void **state)
{
	struct fixture *fx = *state;
	unsigned long dummies = auth_dummy_checks(fx->auth);
	unsigned lookups = fx->store.lookups;
	assert_int_equal(verify(fx, "", "mallory", "secret", "192.0.2.3", NULL, NULL), 0);
	/* Checked against the dummy hash: a full argon2id run, as for a real account. */
	assert_int_equal(auth_dummy_checks(fx->auth), dummies + 1);
	assert_int_equal(fx->store.lookups, lookups + 1);
	/* A locked or corrupt stored hash is a plain refusal, at the same cost. */
	assert_int_equal(verify(fx, "", "locked", "!", "192.0.2.3", NULL, NULL), 0);
	assert_int_equal(auth_dummy_checks(fx->auth), dummies + 2);
	/* A real account with a wrong password runs its own hash, not the dummy. */
	assert_int_equal(verify(fx, "", "alice", "wrong", "192.0.2.3", NULL, NULL), 0);
	assert_int_equal(auth_dummy_checks(fx->auth), dummies + 2);
	/* An empty name is refused before any look-up or hash. */
	assert_int_equal(verify(fx, "", "", "x", NULL, NULL, NULL), 0);
	assert_int_equal(auth_dummy_checks(fx->auth), dummies + 2);
}

static void test_lookup_error(void **state)
{
	struct fixture *fx = *state;
	unsigned delay = 99;
	assert_int_equal(verify(fx, "", "TmpFail", "secret", "192.0.2.4", &delay, NULL), -1);
	assert_int_equal(delay, 0);
}

static void test_authzid_mismatch(void **state)
{
	struct fixture *fx = *state;
	unsigned before = fx->store.lookups;
	assert_int_equal(verify(fx, "bob", "alice", "secret", "192.0.2.5", NULL, NULL), 0);
	assert_int_equal(fx->store.lookups, before); /* refused before any lookup */
}

static void test_penalty_grows_and_resets(void **state)
{
	struct fixture *fx = *state;
	const char *ip = "198.51.100.10";
	static const unsigned expect[] = {1000, 2000, 4000, 8000, 15000, 15000, 15000};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		assert_int_equal(cheap_failure(fx, ip), expect[i]);
	/* A real wrong password counts the same. */
	unsigned delay;
	assert_int_equal(verify(fx, "", "alice", "nope", ip, &delay, NULL), 0);
	assert_int_equal(delay, 15000);
	/* Other addresses are not affected. */
	assert_int_equal(cheap_failure(fx, "198.51.100.11"), 1000);
	/* Success clears it. */
	assert_int_equal(verify(fx, "", "alice", "secret", ip, &delay, NULL), 1);
	assert_int_equal(cheap_failure(fx, ip), 1000);
	assert_int_equal(cheap_failure(fx, ip), 2000);
	/* Temporary failures neither count nor get a delay. */
	assert_int_equal(verify(fx, "", "tmpfail", "x", ip, &delay, NULL), -1);
	assert_int_equal(delay, 0);
	assert_int_equal(cheap_failure(fx, ip), 4000);
	/* No address (CLI): no penalty. */
	assert_int_equal(verify(fx, "bob", "alice", "x", NULL, &delay, NULL), 0);
	assert_int_equal(verify(fx, "bob", "alice", "x", NULL, &delay, NULL), 0);
	assert_int_equal(delay, 0);
}

static void test_penalty_forgotten(void **state)
{
	struct fixture *fx = *state;
	const char *ip = "203.0.113.20";
	assert_int_equal(cheap_failure(fx, ip), 1000);
	assert_int_equal(cheap_failure(fx, ip), 2000);
	__atomic_add_fetch(&fake_now, 15 * 60 - 1, __ATOMIC_SEQ_CST);
	assert_int_equal(cheap_failure(fx, ip), 4000); /* still remembered */
	__atomic_add_fetch(&fake_now, 15 * 60, __ATOMIC_SEQ_CST);
	assert_int_equal(cheap_failure(fx, ip), 1000); /* 15 minutes since the last failure */
}

static void test_penalty_address_forms(void **state)
{
	struct fixture *fx = *state;
	/* IPv6 shares one penalty per /64. */
	assert_int_equal(cheap_failure(fx, "2001:db8:1:2::1"), 1000);
	assert_int_equal(cheap_failure(fx, "2001:db8:1:2:ffff::9"), 2000);
	assert_int_equal(cheap_failure(fx, "2001:db8:1:3::1"), 1000);
	/* IPv4 and its v4-mapped IPv6 form are one address; neighbours are not. */
	assert_int_equal(cheap_failure(fx, "192.0.2.77"), 1000);
	assert_int_equal(cheap_failure(fx, "::ffff:192.0.2.77"), 2000);
	assert_int_equal(cheap_failure(fx, "192.0.2.78"), 1000);
	/* Anything else is keyed by its text. */
	assert_int_equal(cheap_failure(fx, "unix:/run/x"), 1000);
	assert_int_equal(cheap_failure(fx, "unix:/run/x"), 2000);
}

static void test_penalty_table_bounded(void **state)
{
	struct fixture *fx = *state;
	/* Far more addresses than slots: memory stays fixed, the oldest are overwritten and
	 * the most recent are remembered (64 recent ones fit in 4-way sets but for bad luck
	 * of about 1e-5). */
	char ip[64];
	const unsigned n = 3 * AUTH_PENALTY_SLOTS;
	for (unsigned i = 0; i < n; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16 & 255, i >> 8 & 255, i & 255);
		assert_int_equal(cheap_failure(fx, ip), 1000);
	}
	for (unsigned i = n - 64; i < n; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16 & 255, i >> 8 & 255, i & 255);
		assert_int_equal(cheap_failure(fx, ip), 2000);
	}
	unsigned forgotten = 0;
	for (unsigned i = 0; i < 64; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16 & 255, i >> 8 & 255, i & 255);
		forgotten += cheap_failure(fx, ip) == 1000;
	}
	assert_true(forgotten > 48); /* at most 4096 of 12288 survive */
}

/* ---- concurrency ---- */

struct concurrent {
	struct auth *auth;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned done, ok, bad;
	struct auth_request reqs[20];
};

static void concurrent_done(struct auth_request *req, void *ctx)
{
	struct concurrent *c = ctx;
	pthread_mutex_lock(&c->lock);
	c->done++;
	if (req->result == 1 && req->account_id == 42)
		c->ok++;
	else if (req->result == 0)
		c->bad++;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void *concurrent_submit(void *arg)
{
	struct concurrent *c = ((void **)arg)[0];
	size_t first = (size_t)(uintptr_t)((void **)arg)[1];
	for (size_t i = first; i < first + 5; i++)
		auth_verify(c->auth, &c->reqs[i], concurrent_done, c);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fixture *fx = *state;
	struct concurrent c = {.auth = fx->auth};
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	for (size_t i = 0; i < 20; i++) {
		c.reqs[i] = (struct auth_request){
		    .authzid = "",
		    .username = i % 2 == 0 ? "alice" : "ALICE",
		    .password = i % 4 == 3 ? "wrong" : "secret",
		    .remote_ip = "192.0.2.200",
		};
	}
	/* Submit from four threads at once. */
	pthread_t th[4];
	void *args[4][2];
	for (size_t t = 0; t < 4; t++) {
		args[t][0] = &c;
		args[t][1] = (void *)(uintptr_t)(t * 5);
		assert_int_equal(pthread_create(&th[t], NULL, concurrent_submit, args[t]), 0);
	}
	for (size_t t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_lock(&c.lock);
	while (c.done < 20)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
	assert_int_equal(c.ok, 15);
	assert_int_equal(c.bad, 5);
	pthread_cond_destroy(&c.cond);
	pthread_mutex_destroy(&c.lock);
}

static void test_free_drains_queue(void **state)
{
	struct fixture *fx = *state;
	struct concurrent c = {0};
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	c.auth = auth_new(fake_lookup, &fx->store, 0);
	for (size_t i = 0; i < 4; i++) {
		c.reqs[i] =
		    (struct auth_request){.username = "nobody", .password = "x", .remote_ip = NULL};
		auth_verify(c.auth, &c.reqs[i], concurrent_done, &c);
	}
	auth_free(&c.auth); /* returns only after all four callbacks ran */
	assert_int_equal(c.done, 4);
	assert_int_equal(c.bad, 4);
	auth_free(&c.auth); /* NULL is fine */
	pthread_cond_destroy(&c.cond);
	pthread_mutex_destroy(&c.lock);
}

/* ---- synchronous look-ups and SCRAM ---- */

static void test_lookup_credentials(void **state)
{
	struct fixture *fx = *state;
	uint64_t id = 0;
	char *cred = NULL;
	assert_int_equal(auth_lookup_credentials(fx->auth, "ALICE", &id, &cred), 1);
	assert_int_equal(id, 42);
	assert_string_equal(cred, fx->store.alice_hash);
	assert_string_equal(fx->store.last_user, "alice");
	auth_credentials_free(&cred);
	assert_null(cred);
	auth_credentials_free(&cred);

	assert_int_equal(auth_lookup_credentials(fx->auth, "mallory", &id, &cred), 0);
	assert_null(cred);
	assert_int_equal(id, 0);
	assert_int_equal(auth_lookup_credentials(fx->auth, "tmpfail", &id, &cred), -1);
	assert_null(cred);
	unsigned before = fx->store.lookups;
	assert_int_equal(auth_lookup_credentials(fx->auth, "", &id, &cred), 0);
	assert_int_equal(fx->store.lookups, before);
}

#define RFC_CLIENT_FIRST "n,,n=%s,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_CLIENT_FINAL                                                                           \
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"                             \
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

static int step_text(struct sasl_server *sasl, const char *text, const char **chal_r)
{
	const char *err;
	char *b64 = base64_encode_dup((const unsigned char *)text, strlen(text));
	int ret = sasl_server_step(sasl, b64, chal_r, &err);
	free(b64);
	return ret;
}

/* The RFC 7677 §3 client messages against the account named user (password "pencil" for
 * "user"). Returns the outcome; -2 when auth_sasl_set_credentials() failed. */
static int scram_exchange(struct fixture *fx, const char *user, uint64_t *id_r)
{
	const char *chal, *err;
	char first[128];
	snprintf(first, sizeof(first), RFC_CLIENT_FIRST, user);
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_SCRAM_SHA_256, 0);
	sasl_server_set_test_nonce(sasl, RFC_SNONCE);
	assert_int_equal(step_text(sasl, first, &chal), 2);
	int outcome = -2;
	if (auth_sasl_set_credentials(fx->auth, sasl, id_r) == 0) {
		assert_int_equal(sasl_server_step(sasl, NULL, &chal, &err), 0);
		int ret = step_text(sasl, RFC_CLIENT_FINAL, &chal);
		if (ret == 0)
			ret = sasl_server_step(sasl, "", &chal, &err);
		assert_int_equal(ret, 1);
		outcome = sasl_server_outcome(sasl);
	}
	sasl_server_free(&sasl);
	return outcome;
}

static void test_sasl_set_credentials(void **state)
{
	struct fixture *fx = *state;
	uint64_t id = 99;
	assert_int_equal(scram_exchange(fx, "user", &id), 1);
	assert_int_equal(id, 43);
	/* Looked up lower-cased: the keys are found (the RFC proof covers "n=user", so it
	 * does not fit this exchange). */
	id = 99;
	assert_int_equal(scram_exchange(fx, "User", &id), 0);
	assert_int_equal(id, 43);
	assert_string_equal(fx->store.last_user, "user");
	/* Stored credentials without a SCRAM part, a locked account, an unknown user: the
	 * exchange runs and fails at its end; no account. */
	assert_int_equal(scram_exchange(fx, "old", &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(scram_exchange(fx, "locked", &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(scram_exchange(fx, "mallory", &id), 0);
	assert_int_equal(id, 0);
	/* alice has SCRAM keys, for "secret": the RFC proof is wrong for her. */
	assert_int_equal(scram_exchange(fx, "alice", &id), 0);
	assert_int_equal(scram_exchange(fx, "tmpfail", &id), -2);
}

static void test_record_result(void **state)
{
	struct fixture *fx = *state;
	const char *ip = "203.0.113.50";
	unsigned delay = 99;
	static const unsigned expect[] = {1000, 2000, 4000, 8000};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		auth_record_result(fx->auth, ip, false, &delay);
		assert_int_equal(delay, expect[i]);
	}
	/* The same table as auth_verify(): a PLAIN failure continues the series. */
	assert_int_equal(cheap_failure(fx, ip), 15000);
	auth_record_result(fx->auth, ip, true, &delay);
	assert_int_equal(delay, 0);
	assert_int_equal(cheap_failure(fx, ip), 1000); /* cleared */
	auth_record_result(fx->auth, ip, false, &delay);
	assert_int_equal(delay, 2000);
	/* No address: nothing tracked. */
	auth_record_result(fx->auth, NULL, false, &delay);
	assert_int_equal(delay, 0);
	auth_record_result(fx->auth, NULL, false, &delay);
	assert_int_equal(delay, 0);
}

/* ---- the authentication cache ---- */

static void set_carol(struct fixture *fx, const char *password)
{
	char *cred = password != NULL ? password_hash_dup(password) : NULL;
	pthread_mutex_lock(&fx->store.lock);
	free(fx->store.carol_cred);
	fx->store.carol_cred = cred;
	pthread_mutex_unlock(&fx->store.lock);
}

/* auth_verify_cached() for carol; 1 hit (req filled), 0 miss. */
static int cached(struct fixture *fx, const char *password, const char *ip)
{
	struct auth_request req = {.username = "Carol", .password = password, .remote_ip = ip};
	int r = auth_verify_cached(fx->auth, &req);
	if (r == 1) {
		assert_int_equal(req.result, 1);
		assert_int_equal(req.account_id, 45);
		assert_true(req.cached);
	}
	return r;
}

static void test_cache(void **state)
{
	struct fixture *fx = *state;
	auth_set_cache(fx->auth, 3600, 100);
	set_carol(fx, "first");
	/* Nothing cached yet; a failure is never cached. */
	assert_int_equal(cached(fx, "first", NULL), 0);
	assert_int_equal(verify(fx, "", "carol", "wrong", NULL, NULL, NULL), 0);
	assert_int_equal(cached(fx, "wrong", NULL), 0);
	/* A success is: the same password hits, another one misses. */
	struct auth_request req = {.username = "carol", .password = "first"};
	assert_int_equal(auth_verify_wait(fx->auth, &req), 1);
	assert_false(req.cached);
	assert_int_equal(cached(fx, "first", NULL), 1);
	assert_int_equal(cached(fx, "First", NULL), 0);
	assert_int_equal(cached(fx, "firstx", NULL), 0);
	/* authzid other than the user: no hit (proxy authorization is refused). */
	struct auth_request proxy = {.authzid = "alice", .username = "carol", .password = "first"};
	assert_int_equal(auth_verify_cached(fx->auth, &proxy), 0);
	/* A hit clears the penalty of the address like any success. */
	assert_int_equal(cheap_failure(fx, "192.0.2.90"), 1000);
	assert_int_equal(cached(fx, "first", "192.0.2.90"), 1);
	assert_int_equal(cheap_failure(fx, "192.0.2.90"), 1000);
	/* Password change: the stored string differs, the old password misses at once, and
	 * the full check refuses it. */
	set_carol(fx, "second");
	assert_int_equal(cached(fx, "first", NULL), 0);
	assert_int_equal(verify(fx, "", "carol", "first", NULL, NULL, NULL), 0);
	assert_int_equal(verify(fx, "", "carol", "second", NULL, NULL, NULL), 1);
	assert_int_equal(cached(fx, "second", NULL), 1);
	/* Expiry: still there one second before the TTL, gone at it. */
	__atomic_add_fetch(&fake_now, 3599, __ATOMIC_SEQ_CST);
	assert_int_equal(cached(fx, "second", NULL), 1);
	__atomic_add_fetch(&fake_now, 1, __ATOMIC_SEQ_CST);
	assert_int_equal(cached(fx, "second", NULL), 0);
	/* Account removal: no look-up result, no hit. */
	assert_int_equal(verify(fx, "", "carol", "second", NULL, NULL, NULL), 1);
	assert_int_equal(cached(fx, "second", NULL), 1);
	set_carol(fx, NULL);
	assert_int_equal(cached(fx, "second", NULL), 0);
	/* Off (TTL 0): never a hit. */
	set_carol(fx, "third");
	auth_set_cache(fx->auth, 0, 100);
	assert_int_equal(verify(fx, "", "carol", "third", NULL, NULL, NULL), 1);
	assert_int_equal(cached(fx, "third", NULL), 0);
	auth_set_cache(fx->auth, 0, 0);
}

static void test_cache_bounded(void **state)
{
	(void)state;
	/* 16 entries: inserting 1000 keys keeps the most recent ones and forgets most. */
	struct auth_cache *c = auth_cache_new(60, 16);
	assert_true(auth_cache_enabled(c));
	unsigned char key[AUTH_CACHE_KEY_LEN];
	char pw[32];
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(pw, sizeof(pw), "pw%u", i);
		auth_cache_key(c, i, "cred", pw, key);
		auth_cache_insert(c, key, i, 100);
	}
	unsigned hits = 0;
	uint64_t id;
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(pw, sizeof(pw), "pw%u", i);
		auth_cache_key(c, i, "cred", pw, key);
		if (auth_cache_lookup(c, key, 100, &id)) {
			assert_int_equal(id, i);
			hits++;
		}
	}
	assert_true(hits <= 16);
	assert_true(hits >= 1);
	/* Keys depend on every part: account id, stored credentials, password. */
	unsigned char k1[AUTH_CACHE_KEY_LEN], k2[AUTH_CACHE_KEY_LEN];
	auth_cache_key(c, 1, "ab", "c", k1);
	auth_cache_key(c, 1, "a", "bc", k2);
	assert_memory_not_equal(k1, k2, sizeof(k1));
	auth_cache_key(c, 2, "ab", "c", k2);
	assert_memory_not_equal(k1, k2, sizeof(k1));
	auth_cache_free(&c);
	assert_null(c);
	c = auth_cache_new(60, 0);
	assert_false(auth_cache_enabled(c));
	auth_cache_insert(c, k1, 1, 100);
	assert_false(auth_cache_lookup(c, k1, 100, &id));
	auth_cache_free(&c);
}

/* ---- workers run at low priority ---- */

struct nice_probe {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int nice;
	int policy;
};

static void nice_probe_cb(struct auth_request *req, void *ctx)
{
	(void)req;
	struct nice_probe *p = ctx;
	errno = 0;
	int n = getpriority(PRIO_PROCESS, (id_t)gettid());
	int policy = -1;
	struct sched_param sp;
	(void)pthread_getschedparam(pthread_self(), &policy, &sp);
	pthread_mutex_lock(&p->lock);
	p->nice = n;
	p->policy = policy;
	p->done = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void test_worker_priority(void **state)
{
	struct fixture *fx = *state;
	struct nice_probe p = {.done = false};
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	struct auth_request req = {.authzid = "bob", .username = "alice", .password = "x"};
	auth_verify(fx->auth, &req, nice_probe_cb, &p); /* the callback runs on a worker */
	pthread_mutex_lock(&p.lock);
	while (!p.done)
		pthread_cond_wait(&p.cond, &p.lock);
	pthread_mutex_unlock(&p.lock);
	/* AUTH_WORKER_NICE above the caller (also when the tests run under `nice`), at most 19. */
	int mine = getpriority(PRIO_PROCESS, (id_t)gettid());
	assert_int_equal(p.nice, mine + AUTH_WORKER_NICE > 19 ? 19 : mine + AUTH_WORKER_NICE);
	assert_int_equal(p.policy, SCHED_OTHER); /* not SCHED_IDLE: it starved logins */
	/* The calling thread keeps its own priority and policy. */
	assert_true(mine < p.nice || mine == 19);
	int policy;
	struct sched_param sp;
	assert_int_equal(pthread_getschedparam(pthread_self(), &policy, &sp), 0);
	assert_int_equal(policy, SCHED_OTHER);
	/* Never every core for hashing (unless there is only one). */
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	assert_true(auth_default_workers() >= 1);
	assert_true(cores <= 1 || (long)auth_default_workers() < cores);
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
}

/* ---- APOP ---- */

static void test_apop(void **state)
{
	struct fixture *fx = *state;
	const char *banner = "<1896.697170952@dbc.mtview.ca.us>";
	uint64_t id = 0;
	/* RFC 1939 §7's example digest, in either case. */
	assert_int_equal(
	    auth_verify_apop(fx->auth, banner, "Alice", "c4c9334bac560ecc979e58001b3e22fb", &id),
	    1);
	assert_int_equal(id, 42);
	assert_int_equal(
	    auth_verify_apop(fx->auth, banner, "alice", "C4C9334BAC560ECC979E58001B3E22FB", &id),
	    1);
	/* Another banner, a short digest, no secret, unknown user, look-up error. */
	assert_int_equal(
	    auth_verify_apop(fx->auth, "<1.2@x>", "alice", "c4c9334bac560ecc979e58001b3e22fb", &id),
	    0);
	assert_int_equal(id, 0);
	assert_int_equal(auth_verify_apop(fx->auth, banner, "alice", "c4c9334b", &id), 0);
	assert_int_equal(
	    auth_verify_apop(fx->auth, banner, "user", "c4c9334bac560ecc979e58001b3e22fb", &id), 0);
	assert_int_equal(auth_verify_apop(fx->auth, banner, "tmpfail", "00", &id), -1);
	assert_int_equal(auth_verify_apop(fx->auth, banner, "", "00", &id), 0);
}

/* ---- the login driver ---- */

struct wake_probe {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned wakes;
};

static void wake_probe_cb(void *ctx)
{
	struct wake_probe *w = ctx;
	pthread_mutex_lock(&w->lock);
	w->wakes++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Wait for a PENDING login's wake and resume it. */
static enum auth_login_status login_wait(struct auth_login *login, struct wake_probe *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->wakes == 0)
		pthread_cond_wait(&w->cond, &w->lock);
	w->wakes = 0;
	pthread_mutex_unlock(&w->lock);
	const char *chal, *err;
	return auth_login_resume(login, &chal, &err);
}

static unsigned wake_count(struct wake_probe *w)
{
	pthread_mutex_lock(&w->lock);
	unsigned n = w->wakes;
	pthread_mutex_unlock(&w->lock);
	return n;
}

static char *b64_text(const char *text, size_t len)
{
	return base64_encode_dup((const unsigned char *)text, len);
}

static void test_login_plain_and_login(void **state)
{
	struct fixture *fx = *state;
	struct wake_probe w = {.wakes = 0};
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	auth_set_cache(fx->auth, 3600, 100);
	const char *chal, *err;

	/* PLAIN with an initial response: the first check runs on a worker... */
	char *ir = b64_text("\0alice\0secret", 13);
	struct auth_login *l = auth_login_new(fx->auth, "192.0.2.120", wake_probe_cb, &w);
	assert_int_equal(auth_login_sasl_start(l, SASL_MECH_PLAIN, ir, &chal, &err),
	                 AUTH_LOGIN_PENDING);
	assert_int_equal(login_wait(l, &w), AUTH_LOGIN_DONE);
	const struct auth_login_result *res = auth_login_result(l);
	assert_int_equal(res->result, 1);
	assert_int_equal(res->account_id, 42);
	assert_string_equal(res->user, "alice");
	assert_string_equal(res->mech, "PLAIN");
	assert_false(res->cached);
	auth_login_free(&l);
	assert_null(l);
	/* ...a repeat is answered from the cache at once, without a worker. */
	l = auth_login_new(fx->auth, "192.0.2.120", wake_probe_cb, &w);
	assert_int_equal(auth_login_sasl_start(l, SASL_MECH_PLAIN, ir, &chal, &err),
	                 AUTH_LOGIN_DONE);
	assert_true(auth_login_result(l)->cached);
	assert_int_equal(auth_login_result(l)->account_id, 42);
	auth_login_free(&l);
	free(ir);

	/* LOGIN: two challenges, then a wrong password fails with the first-failure delay. */
	l = auth_login_new(fx->auth, "192.0.2.121", wake_probe_cb, &w);
	assert_int_equal(auth_login_sasl_start(l, SASL_MECH_LOGIN, NULL, &chal, &err),
	                 AUTH_LOGIN_CHALLENGE);
	assert_string_equal(chal, "VXNlcm5hbWU6");
	char *u = b64_text("alice", 5), *p = b64_text("wrong", 5);
	assert_int_equal(auth_login_sasl_continue(l, u, &chal, &err), AUTH_LOGIN_CHALLENGE);
	assert_string_equal(chal, "UGFzc3dvcmQ6");
	assert_int_equal(auth_login_sasl_continue(l, p, &chal, &err), AUTH_LOGIN_PENDING);
	assert_int_equal(login_wait(l, &w), AUTH_LOGIN_DONE);
	assert_int_equal(auth_login_result(l)->result, 0);
	assert_int_equal(auth_login_result(l)->delay_ms, 1000);
	assert_int_equal(auth_login_result(l)->account_id, 0);
	auth_login_free(&l);
	free(u);
	free(p);

	/* USER/PASS style: the same path and cache. */
	l = auth_login_new(fx->auth, NULL, wake_probe_cb, &w);
	assert_int_equal(auth_login_password(l, NULL, "ALICE", "secret"), AUTH_LOGIN_DONE);
	assert_string_equal(auth_login_result(l)->mech, "USER");
	assert_int_equal(auth_login_result(l)->result, 1);
	auth_login_free(&l);

	/* Malformed base64 and a cancel end the exchange with their own statuses. */
	l = auth_login_new(fx->auth, NULL, wake_probe_cb, &w);
	assert_int_equal(auth_login_sasl_start(l, SASL_MECH_PLAIN, "AG!!", &chal, &err),
	                 AUTH_LOGIN_MALFORMED);
	assert_non_null(err);
	auth_login_free(&l);
	l = auth_login_new(fx->auth, NULL, wake_probe_cb, &w);
	assert_int_equal(auth_login_sasl_start(l, SASL_MECH_LOGIN, NULL, &chal, &err),
	                 AUTH_LOGIN_CHALLENGE);
	assert_int_equal(auth_login_sasl_continue(l, "*", &chal, &err), AUTH_LOGIN_CANCELLED);
	auth_login_free(&l);
	auth_set_cache(fx->auth, 0, 0);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
}

static void test_login_scram_and_apop(void **state)
{
	struct fixture *fx = *state;
	const char *chal, *err;
	/* SCRAM: keys looked up on this thread, the verdict without a worker. */
	struct auth_login *l = auth_login_new(fx->auth, "192.0.2.130", NULL, NULL);
	char *first = b64_text("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", 32);
	assert_int_equal(auth_login_sasl_start(l, SASL_MECH_SCRAM_SHA_256, first, &chal, &err),
	                 AUTH_LOGIN_CHALLENGE);
	char *bad = b64_text("c=biws,r=x,p=AAAA", 17);
	assert_int_equal(auth_login_sasl_continue(l, bad, &chal, &err), AUTH_LOGIN_MALFORMED);
	auth_login_free(&l);
	free(bad);
	free(first);
	/* SCRAM for a user that is not there: the exchange runs and fails with a delay. */
	l = auth_login_new(fx->auth, "192.0.2.131", NULL, NULL);
	first = b64_text("n,,n=mallory,r=abc", 18);
	assert_int_equal(auth_login_sasl_start(l, SASL_MECH_SCRAM_SHA_256, first, &chal, &err),
	                 AUTH_LOGIN_CHALLENGE);
	free(first);
	size_t dlen = base64_decoded_max(strlen(chal)) + 1;
	unsigned char *sf = xmalloc(dlen);
	ssize_t n = base64_decode(chal, strlen(chal), sf, dlen);
	assert_true(n > 0);
	sf[n] = '\0';
	const char *nonce = (const char *)sf + 2;
	size_t nlen = strcspn(nonce, ",");
	char final[256];
	snprintf(final, sizeof(final),
	         "c=biws,r=%.*s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", (int)nlen, nonce);
	free(sf);
	char *fb = b64_text(final, strlen(final));
	assert_int_equal(auth_login_sasl_continue(l, fb, &chal, &err), AUTH_LOGIN_DONE);
	free(fb);
	assert_int_equal(auth_login_result(l)->result, 0);
	assert_int_equal(auth_login_result(l)->delay_ms, 1000);
	assert_string_equal(auth_login_result(l)->user, "mallory");
	assert_string_equal(auth_login_result(l)->mech, "SCRAM-SHA-256");
	auth_login_free(&l);
	/* APOP through the driver: success clears, failure earns the delay. */
	const char *banner = "<1896.697170952@dbc.mtview.ca.us>";
	l = auth_login_new(fx->auth, "192.0.2.132", NULL, NULL);
	assert_int_equal(auth_login_apop(l, banner, "alice", "00000000000000000000000000000000"),
	                 AUTH_LOGIN_DONE);
	assert_int_equal(auth_login_result(l)->result, 0);
	assert_int_equal(auth_login_result(l)->delay_ms, 1000);
	auth_login_free(&l);
	l = auth_login_new(fx->auth, "192.0.2.132", NULL, NULL);
	assert_int_equal(auth_login_apop(l, banner, "alice", "c4c9334bac560ecc979e58001b3e22fb"),
	                 AUTH_LOGIN_DONE);
	assert_int_equal(auth_login_result(l)->result, 1);
	assert_int_equal(auth_login_result(l)->account_id, 42);
	assert_string_equal(auth_login_result(l)->mech, "APOP");
	auth_login_free(&l);
	assert_int_equal(cheap_failure(fx, "192.0.2.132"), 1000); /* cleared by the success */
	auth_login_free(&l);
}

/* Where look-ups may wait (PostgreSQL), every look-up leaves the caller's thread: the cache
 * check on a look-up thread at normal priority (a cached login never queues behind hashes
 * at idle priority), APOP's secret and SCRAM's keys too. */
static void test_lookups_off_the_caller(void **state)
{
	struct fixture *fx = *state;
	struct wake_probe w[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (struct wake_probe){.wakes = 0};
		pthread_mutex_init(&w[i].lock, NULL);
		pthread_cond_init(&w[i].cond, NULL);
	}
	auth_set_cache(fx->auth, 3600, 100);
	auth_set_lookups_wait(fx->auth, true);
	const char *chal, *err;

	/* Even a cache hit is PENDING now; the first login fills the cache. */
	struct auth_login *l = auth_login_new(fx->auth, "192.0.2.140", wake_probe_cb, &w[0]);
	assert_int_equal(auth_login_password(l, NULL, "alice", "secret"), AUTH_LOGIN_PENDING);
	assert_int_equal(login_wait(l, &w[0]), AUTH_LOGIN_DONE);
	assert_int_equal(auth_login_result(l)->result, 1);
	assert_false(auth_login_result(l)->cached);
	auth_login_free(&l);

	/* Both hashers busy with wrong passwords; the cached login is answered before either. */
	struct auth_login *slow[2];
	for (int i = 0; i < 2; i++) {
		slow[i] = auth_login_new(fx->auth, "192.0.2.141", wake_probe_cb, &w[1 + i]);
		assert_int_equal(auth_login_password(slow[i], NULL, "alice", "wrong"),
		                 AUTH_LOGIN_PENDING);
	}
	l = auth_login_new(fx->auth, "192.0.2.142", wake_probe_cb, &w[0]);
	assert_int_equal(auth_login_password(l, NULL, "alice", "secret"), AUTH_LOGIN_PENDING);
	assert_int_equal(login_wait(l, &w[0]), AUTH_LOGIN_DONE);
	assert_int_equal(wake_count(&w[1]) + wake_count(&w[2]), 0);
	assert_int_equal(auth_login_result(l)->result, 1);
	assert_true(auth_login_result(l)->cached);
	auth_login_free(&l);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(login_wait(slow[i], &w[1 + i]), AUTH_LOGIN_DONE);
		assert_int_equal(auth_login_result(slow[i])->result, 0);
		auth_login_free(&slow[i]);
	}

	/* The cache check's callback runs on a look-up thread, not at idle priority. */
	struct nice_probe p = {.done = false};
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	struct auth_request req = {.username = "alice", .password = "secret"};
	auth_verify(fx->auth, &req, nice_probe_cb, &p);
	pthread_mutex_lock(&p.lock);
	while (!p.done)
		pthread_cond_wait(&p.cond, &p.lock);
	pthread_mutex_unlock(&p.lock);
	assert_true(req.cached);
	assert_int_equal(p.policy, SCHED_OTHER);
	assert_int_equal(p.nice, getpriority(PRIO_PROCESS, (id_t)gettid()));
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);

	/* APOP: the secret's look-up on a look-up thread. */
	const char *banner = "<1896.697170952@dbc.mtview.ca.us>";
	l = auth_login_new(fx->auth, "192.0.2.143", wake_probe_cb, &w[0]);
	assert_int_equal(auth_login_apop(l, banner, "alice", "c4c9334bac560ecc979e58001b3e22fb"),
	                 AUTH_LOGIN_PENDING);
	assert_int_equal(login_wait(l, &w[0]), AUTH_LOGIN_DONE);
	assert_int_equal(auth_login_result(l)->result, 1);
	assert_int_equal(auth_login_result(l)->account_id, 42);
	assert_string_equal(auth_login_result(l)->mech, "APOP");
	auth_login_free(&l);

	/* SCRAM: the keys' look-up, then the server-first message from the resume. */
	l = auth_login_new(fx->auth, "192.0.2.144", wake_probe_cb, &w[0]);
	char *first = b64_text("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", 32);
	assert_int_equal(auth_login_sasl_start(l, SASL_MECH_SCRAM_SHA_256, first, &chal, &err),
	                 AUTH_LOGIN_PENDING);
	free(first);
	pthread_mutex_lock(&w[0].lock);
	while (w[0].wakes == 0)
		pthread_cond_wait(&w[0].cond, &w[0].lock);
	w[0].wakes = 0;
	pthread_mutex_unlock(&w[0].lock);
	assert_int_equal(auth_login_resume(l, &chal, &err), AUTH_LOGIN_CHALLENGE);
	assert_true(strlen(chal) > 0);
	char *bad = b64_text("c=biws,r=x,p=AAAA", 17);
	assert_int_equal(auth_login_sasl_continue(l, bad, &chal, &err), AUTH_LOGIN_MALFORMED);
	free(bad);
	auth_login_free(&l);

	auth_set_lookups_wait(fx->auth, false);
	auth_set_cache(fx->auth, 0, 0);
	for (int i = 0; i < 3; i++) {
		pthread_cond_destroy(&w[i].cond);
		pthread_mutex_destroy(&w[i].lock);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok),
	    cmocka_unit_test(test_wrong_password),
	    cmocka_unit_test(test_unknown_user),
	    cmocka_unit_test(test_lookup_error),
	    cmocka_unit_test(test_authzid_mismatch),
	    cmocka_unit_test(test_penalty_grows_and_resets),
	    cmocka_unit_test(test_penalty_forgotten),
	    cmocka_unit_test(test_penalty_address_forms),
	    cmocka_unit_test(test_penalty_table_bounded),
	    cmocka_unit_test(test_concurrent),
	    cmocka_unit_test(test_free_drains_queue),
	    cmocka_unit_test(test_lookup_credentials),
	    cmocka_unit_test(test_sasl_set_credentials),
	    cmocka_unit_test(test_record_result),
	    cmocka_unit_test(test_cache),
	    cmocka_unit_test(test_cache_bounded),
	    cmocka_unit_test(test_worker_priority),
	    cmocka_unit_test(test_apop),
	    cmocka_unit_test(test_login_plain_and_login),
	    cmocka_unit_test(test_login_scram_and_apop),
	    cmocka_unit_test(test_lookups_off_the_caller),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
