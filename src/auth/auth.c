/* Credential verification on worker threads, synchronous look-ups for SCRAM, and the per-IP
 * penalty table (see auth.h).
 * Requests go through one mutex-protected FIFO to the workers; the penalty table is a
 * fixed set-associative array keyed by a keyed hash of the client's address, so memory is
 * bounded whatever the number of attacking addresses. */
#include "auth/auth.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "auth/auth_cache.h"
#include "auth/auth_pool.h"
#include "auth/password.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define AUTH_MAX_WORKERS 64
#define AUTH_PENALTY_WAYS 4 /* entries per set: an address evicts only the oldest of its set */
#define AUTH_PENALTY_SETS (AUTH_PENALTY_SLOTS / AUTH_PENALTY_WAYS)
/* Failures saturate here (the delay stopped growing long before). */
#define AUTH_PENALTY_COUNT_MAX 1000

/* A verification (auth_verify()) or a look-up (auth_run_lookup()) on its way through the
 * pools. */
struct auth_job {
	struct auth_pool_job pool; /* first */
	struct auth *auth;
	struct auth_request *req;
	void (*cb)(struct auth_request *req, void *ctx);
	void (*fn)(void *ctx);
	void *ctx;
};

struct auth_penalty {
	unsigned char key[16]; /* address key, see auth_penalty_key() */
	uint32_t failures;     /* 0 = free slot */
	uint64_t last_failure; /* clock seconds */
	uint64_t last_use;     /* penalty_tick when last failed: the LRU order */
};

struct auth {
	auth_lookup_fn *lookup;
	void *lookup_ctx;
	atomic_bool lookups_wait;  /* auth_set_lookups_wait() */
	char *dummy_hash;          /* hash of a random password, for unknown users */
	atomic_ulong dummy_checks; /* auth_dummy_checks() */
	struct auth_cache *cache;
	auth_apop_lookup_fn *apop_lookup;
	void *apop_ctx;

	struct auth_pool *hashers; /* password checks, at idle priority */
	struct auth_pool *lookups; /* cache checks and look-ups that may wait; NULL until
	                              auth_set_lookups_wait(true) */

	pthread_mutex_t penalty_lock;   /* protects penalties */
	struct auth_penalty *penalties; /* AUTH_PENALTY_SETS * AUTH_PENALTY_WAYS */
	unsigned char penalty_hash_key[crypto_shorthash_KEYBYTES];
	unsigned char penalty_fallback_key[crypto_generichash_KEYBYTES];
	uint64_t penalty_tick;
	uint64_t (*now)(void);
};

static uint64_t auth_clock_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

void auth_set_clock(struct auth *auth, uint64_t (*now_fn)(void))
{
	pthread_mutex_lock(&auth->penalty_lock);
	auth->now = now_fn != NULL ? now_fn : auth_clock_monotonic;
	pthread_mutex_unlock(&auth->penalty_lock);
}

/* ---- penalty table ---- */

/* The key of an address: IPv4 (also as ::ffff:a.b.c.d) as its v4-mapped form, IPv6 cut to
 * its /64 (one customer usually holds a whole /64), anything else a keyed hash of the text. */
static void auth_penalty_key(const struct auth *auth, const char *ip, unsigned char key[16])
{
	struct in_addr a4;
	struct in6_addr a6;

	memset(key, 0, 16);
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &a4, 4);
	} else if (inet_pton(AF_INET6, ip, &a6) == 1) {
		memcpy(key, &a6, 16);
		if (!IN6_IS_ADDR_V4MAPPED(&a6))
			memset(key + 8, 0, 8);
	} else {
		crypto_generichash(key, 16, (const unsigned char *)ip, strlen(ip),
		                   auth->penalty_fallback_key, sizeof(auth->penalty_fallback_key));
	}
}

/* The set of a key; the hash is keyed with a secret so nobody can aim at one set. */
static struct auth_penalty *auth_penalty_set(const struct auth *auth, const unsigned char key[16])
{
	unsigned char h[crypto_shorthash_BYTES];
	crypto_shorthash(h, key, 16, auth->penalty_hash_key);
	uint32_t v = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16;
	return auth->penalties + (size_t)(v % AUTH_PENALTY_SETS) * AUTH_PENALTY_WAYS;
}

/* The live entry for key in set, or NULL. Forgets entries whose last failure is too old. */
static struct auth_penalty *auth_penalty_find(struct auth_penalty *set, const unsigned char *key,
                                              uint64_t now)
{
	for (unsigned i = 0; i < AUTH_PENALTY_WAYS; i++) {
		struct auth_penalty *p = &set[i];
		if (p->failures != 0 && now - p->last_failure >= AUTH_PENALTY_FORGET_SECS)
			p->failures = 0;
		if (p->failures != 0 && memcmp(p->key, key, 16) == 0)
			return p;
	}
	return NULL;
}

/* A slot for a new key: a free one, else the least recently failed one. */
static struct auth_penalty *auth_penalty_victim(struct auth_penalty *set)
{
	struct auth_penalty *victim = &set[0];
	for (unsigned i = 0; i < AUTH_PENALTY_WAYS; i++) {
		if (set[i].failures == 0)
			return &set[i];
		if (set[i].last_use < victim->last_use)
			victim = &set[i];
	}
	return victim;
}

/* Delay before answering the failure that follows `previous` recent failures: from the
 * first failure on (RFC 4954 §4 and Dovecot's auth_failure_delay), growing after. */
static unsigned auth_penalty_delay(uint32_t previous)
{
	if (previous >= 4) /* 1000 << 4 = 16000 is already past the ceiling */
		return AUTH_PENALTY_MAX_MS;
	unsigned ms = AUTH_PENALTY_FIRST_MS << previous;
	return ms > AUTH_PENALTY_MAX_MS ? AUTH_PENALTY_MAX_MS : ms;
}

/* Record one failure from ip; returns the delay the protocol should apply to it. */
static unsigned auth_penalty_fail(struct auth *auth, const char *ip)
{
	unsigned char key[16];
	auth_penalty_key(auth, ip, key);
	pthread_mutex_lock(&auth->penalty_lock);
	uint64_t now = auth->now();
	struct auth_penalty *set = auth_penalty_set(auth, key);
	struct auth_penalty *p = auth_penalty_find(set, key, now);
	if (p == NULL) {
		p = auth_penalty_victim(set);
		memcpy(p->key, key, 16);
		p->failures = 0;
	}
	unsigned delay = auth_penalty_delay(p->failures);
	if (p->failures < AUTH_PENALTY_COUNT_MAX)
		p->failures++;
	p->last_failure = now;
	p->last_use = ++auth->penalty_tick;
	pthread_mutex_unlock(&auth->penalty_lock);
	return delay;
}

static void auth_penalty_reset(struct auth *auth, const char *ip)
{
	unsigned char key[16];
	auth_penalty_key(auth, ip, key);
	pthread_mutex_lock(&auth->penalty_lock);
	struct auth_penalty *p = auth_penalty_find(auth_penalty_set(auth, key), key, auth->now());
	if (p != NULL)
		p->failures = 0;
	pthread_mutex_unlock(&auth->penalty_lock);
}

/* ---- verification ---- */

static uint64_t auth_now(struct auth *auth)
{
	pthread_mutex_lock(&auth->penalty_lock);
	uint64_t now = auth->now();
	pthread_mutex_unlock(&auth->penalty_lock);
	return now;
}

/* Lower-case ASCII letters; other bytes (UTF-8) are left alone. Malloc'd. */
static char *auth_lowercase_dup(const char *s)
{
	char *out = xstrdup(s);
	for (char *p = out; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	return out;
}

/* Spend the time of one hash check and ignore its answer (unknown user, unusable hash). */
static void auth_burn_dummy(struct auth *auth, const char *password)
{
	atomic_fetch_add(&auth->dummy_checks, 1);
	(void)!password_verify(auth->dummy_hash, password);
}

unsigned long auth_dummy_checks(struct auth *auth)
{
	return atomic_load(&auth->dummy_checks);
}

/* The credential check proper: returns 1, 0 or -1 and fills account_id on 1. */
static int auth_check(struct auth *auth, struct auth_request *req)
{
	if (req->authzid != NULL && req->authzid[0] != '\0' &&
	    strcasecmp(req->authzid, req->username) != 0)
		return 0; /* proxy authorization is not supported */
	if (req->username[0] == '\0')
		return 0;

	char *user = auth_lowercase_dup(req->username);
	uint64_t id = 0;
	char *hash = NULL;
	int ret = auth->lookup(auth->lookup_ctx, user, &id, &hash);
	if (ret < 0) {
		log_error("event=auth_lookup user=%s result=temporary_failure", user);
	} else if (ret == 0) {
		auth_burn_dummy(auth, req->password);
	} else {
		ASSERT(hash != NULL);
		ret = password_verify(hash, req->password);
		if (ret == 1 && auth_cache_enabled(auth->cache)) {
			unsigned char key[AUTH_CACHE_KEY_LEN];
			auth_cache_key(auth->cache, id, hash, req->password, key);
			auth_cache_insert(auth->cache, key, id, auth_now(auth));
		}
		if (ret < 0) {
			/* Locked ("!") or corrupt: a refusal that looks like a wrong password. */
			log_warn("event=auth_bad_hash user=%s", user);
			auth_burn_dummy(auth, req->password);
			ret = 0;
		}
		if (ret == 1)
			req->account_id = id;
	}
	free(user);
	if (hash != NULL) {
		xmemzero(hash, strlen(hash));
		free(hash);
	}
	return ret;
}

void auth_set_lookups_wait(struct auth *auth, bool wait)
{
	if (wait && auth->lookups == NULL)
		auth->lookups = auth_pool_new(AUTH_LOOKUP_THREADS, false);
	atomic_store(&auth->lookups_wait, wait);
}

bool auth_lookups_wait(struct auth *auth)
{
	return atomic_load(&auth->lookups_wait);
}

void auth_set_cache(struct auth *auth, unsigned ttl_secs, unsigned size)
{
	auth_cache_free(&auth->cache);
	auth->cache = auth_cache_new(ttl_secs, size);
}

int auth_verify_cached(struct auth *auth, struct auth_request *req)
{
	ASSERT(req->username != NULL && req->password != NULL);
	req->cached = false;
	if (!auth_cache_enabled(auth->cache) || req->username[0] == '\0')
		return 0;
	if (req->authzid != NULL && req->authzid[0] != '\0' &&
	    strcasecmp(req->authzid, req->username) != 0)
		return 0;
	uint64_t id = 0;
	char *credentials = NULL;
	if (auth_lookup_credentials(auth, req->username, &id, &credentials) != 1)
		return 0;
	unsigned char key[AUTH_CACHE_KEY_LEN];
	uint64_t cached_id = 0;
	auth_cache_key(auth->cache, id, credentials, req->password, key);
	auth_credentials_free(&credentials);
	bool hit = auth_cache_lookup(auth->cache, key, auth_now(auth), &cached_id);
	xmemzero(key, sizeof(key));
	if (!hit || cached_id != id)
		return 0;
	req->result = 1;
	req->account_id = id;
	req->delay_ms = 0;
	req->cached = true;
	if (req->remote_ip != NULL)
		auth_penalty_reset(auth, req->remote_ip);
	return 1;
}

void auth_set_apop_lookup(struct auth *auth, auth_apop_lookup_fn *lookup, void *ctx)
{
	auth->apop_lookup = lookup;
	auth->apop_ctx = ctx;
}

/* RFC 1939 §7: digest = MD5(banner + secret) as 32 hex digits. Constant-time compare. */
static bool auth_apop_match(const char *banner, const char *secret, const char *digest)
{
	static const char hexdigits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	          EVP_DigestUpdate(ctx, banner, strlen(banner)) == 1 &&
	          EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1 &&
	          EVP_DigestFinal_ex(ctx, md, &md_len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || md_len != 16 || strlen(digest) != 32)
		return false;
	char want[32], got[32];
	for (unsigned i = 0; i < 16; i++) {
		want[2 * i] = hexdigits[md[i] >> 4];
		want[2 * i + 1] = hexdigits[md[i] & 15];
	}
	for (unsigned i = 0; i < 32; i++)
		got[i] = digest[i] >= 'A' && digest[i] <= 'F' ? (char)(digest[i] + ('a' - 'A'))
		                                              : digest[i];
	ok = CRYPTO_memcmp(want, got, sizeof(want)) == 0;
	xmemzero(md, sizeof(md));
	xmemzero(want, sizeof(want));
	return ok;
}

int auth_verify_apop(struct auth *auth, const char *banner, const char *username,
                     const char *digest, uint64_t *account_id_r)
{
	*account_id_r = 0;
	if (auth->apop_lookup == NULL || username[0] == '\0')
		return 0;
	char *user = auth_lowercase_dup(username);
	uint64_t id = 0;
	char *secret = NULL;
	int ret = auth->apop_lookup(auth->apop_ctx, user, &id, &secret);
	if (ret < 0)
		log_error("event=auth_lookup user=%s mech=APOP result=temporary_failure", user);
	free(user);
	if (ret == 1) {
		ret = auth_apop_match(banner, secret, digest) ? 1 : 0;
		if (ret == 1)
			*account_id_r = id;
	}
	auth_credentials_free(&secret);
	return ret;
}

int auth_lookup_credentials(struct auth *auth, const char *username, uint64_t *account_id_r,
                            char **credentials_r)
{
	*credentials_r = NULL;
	*account_id_r = 0;
	if (username[0] == '\0')
		return 0;
	char *user = auth_lowercase_dup(username);
	uint64_t id = 0;
	char *credentials = NULL;
	int ret = auth->lookup(auth->lookup_ctx, user, &id, &credentials);
	if (ret < 0)
		log_error("event=auth_lookup user=%s result=temporary_failure", user);
	free(user);
	if (ret <= 0) {
		auth_credentials_free(&credentials);
		return ret < 0 ? -1 : 0;
	}
	ASSERT(credentials != NULL);
	*account_id_r = id;
	*credentials_r = credentials;
	return 1;
}

void auth_credentials_free(char **credentials)
{
	if (*credentials == NULL)
		return;
	xmemzero(*credentials, strlen(*credentials));
	free(*credentials);
	*credentials = NULL;
}

int auth_sasl_set_credentials(struct auth *auth, struct sasl_server *sasl, uint64_t *account_id_r)
{
	const char *username = sasl_server_username(sasl);
	char *credentials;
	uint64_t id;
	*account_id_r = 0;
	int ret = auth_lookup_credentials(auth, username, &id, &credentials);
	if (ret < 0)
		return -1;
	struct password_scram keys;
	bool have_keys = ret == 1 && password_scram_keys(credentials, &keys) == 0;
	if (ret == 1 && !have_keys)
		log_info("event=auth_scram_unavailable user=%s", username);
	sasl_server_set_credentials(sasl, have_keys ? &keys : NULL);
	if (have_keys)
		*account_id_r = id;
	password_scram_wipe(&keys);
	auth_credentials_free(&credentials);
	return 0;
}

void auth_record_result(struct auth *auth, const char *remote_ip, bool success,
                        unsigned *delay_ms_r)
{
	*delay_ms_r = 0;
	if (remote_ip == NULL)
		return;
	if (success)
		auth_penalty_reset(auth, remote_ip);
	else
		*delay_ms_r = auth_penalty_fail(auth, remote_ip);
}

/* The full check: look-up and hash (the cache was asked before, where it is on). */
static void auth_process(struct auth *auth, struct auth_request *req)
{
	ASSERT(req->username != NULL && req->password != NULL);
	req->account_id = 0;
	req->delay_ms = 0;
	req->cached = false;
	req->result = auth_check(auth, req);
	if (req->remote_ip == NULL)
		return;
	if (req->result == 1)
		auth_penalty_reset(auth, req->remote_ip);
	else if (req->result == 0)
		req->delay_ms = auth_penalty_fail(auth, req->remote_ip);
}

/* On a hasher. */
static void auth_job_hash(struct auth_pool_job *pj)
{
	struct auth_job *job = (struct auth_job *)pj;
	auth_process(job->auth, job->req);
	job->cb(job->req, job->ctx);
	free(job);
}

/* On a look-up thread: the cache, and only a miss goes on to the hashers. A cached login
 * never waits behind hashes at idle priority. */
static void auth_job_cache(struct auth_pool_job *pj)
{
	struct auth_job *job = (struct auth_job *)pj;
	if (auth_verify_cached(job->auth, job->req) == 1) {
		job->cb(job->req, job->ctx);
		free(job);
		return;
	}
	job->pool.run = auth_job_hash;
	auth_pool_push(job->auth->hashers, &job->pool);
}

static void auth_job_fn(struct auth_pool_job *pj)
{
	struct auth_job *job = (struct auth_job *)pj;
	job->fn(job->ctx);
	free(job);
}

void auth_verify(struct auth *auth, struct auth_request *req,
                 void (*cb)(struct auth_request *req, void *ctx), void *ctx)
{
	struct auth_job *job = xcalloc(1, sizeof(*job));
	job->auth = auth;
	job->req = req;
	job->cb = cb;
	job->ctx = ctx;
	/* Where look-ups may wait, the cache is tried on a look-up thread rather than on the
	 * caller's loop. */
	if (atomic_load(&auth->lookups_wait)) {
		job->pool.run = auth_job_cache;
		auth_pool_push(auth->lookups, &job->pool);
	} else {
		job->pool.run = auth_job_hash;
		auth_pool_push(auth->hashers, &job->pool);
	}
}

void auth_run_lookup(struct auth *auth, void (*fn)(void *ctx), void *ctx)
{
	ASSERT(auth->lookups != NULL);
	struct auth_job *job = xcalloc(1, sizeof(*job));
	job->auth = auth;
	job->fn = fn;
	job->ctx = ctx;
	job->pool.run = auth_job_fn;
	auth_pool_push(auth->lookups, &job->pool);
}

struct auth_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void auth_wait_done(struct auth_request *req, void *ctx)
{
	struct auth_wait *w = ctx;
	(void)req;
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int auth_verify_wait(struct auth *auth, struct auth_request *req)
{
	struct auth_wait w = {.done = false};
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	auth_verify(auth, req, auth_wait_done, &w);
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return req->result;
}

/* ---- life cycle ---- */

unsigned auth_default_workers(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores <= 2)
		return 1;
	return cores - 1 > AUTH_MAX_WORKERS ? AUTH_MAX_WORKERS : (unsigned)(cores - 1);
}

struct auth *auth_new(auth_lookup_fn *lookup, void *lookup_ctx, unsigned worker_threads)
{
	if (password_init() < 0)
		log_fatal("auth: libsodium cannot be initialised");
	struct auth *auth = xcalloc(1, sizeof(*auth));
	auth->lookup = lookup;
	auth->lookup_ctx = lookup_ctx;
	auth->now = auth_clock_monotonic;

	char *secret = password_random_dup(32);
	auth->dummy_hash = password_hash_dup(secret);
	xmemzero(secret, strlen(secret));
	free(secret);
	if (auth->dummy_hash == NULL)
		log_fatal("auth: cannot compute the dummy password hash");

	auth->penalties = xcalloc(AUTH_PENALTY_SETS * AUTH_PENALTY_WAYS, sizeof(*auth->penalties));
	randombytes_buf(auth->penalty_hash_key, sizeof(auth->penalty_hash_key));
	randombytes_buf(auth->penalty_fallback_key, sizeof(auth->penalty_fallback_key));
	pthread_mutex_init(&auth->penalty_lock, NULL);

	auth->cache = auth_cache_new(0, 0);
	if (worker_threads == 0)
		worker_threads = auth_default_workers();
	if (worker_threads > AUTH_MAX_WORKERS)
		worker_threads = AUTH_MAX_WORKERS;
	auth->hashers = auth_pool_new(worker_threads, true);
	return auth;
}

void auth_free(struct auth **authp)
{
	struct auth *auth = *authp;
	if (auth == NULL)
		return;
	/* Look-ups first: their cache misses still go on to the hashers. */
	auth_pool_free(&auth->lookups);
	auth_pool_free(&auth->hashers);
	pthread_mutex_destroy(&auth->penalty_lock);
	free(auth->penalties);
	auth_cache_free(&auth->cache);
	free(auth->dummy_hash);
	xmemzero(auth, sizeof(*auth));
	free(auth);
	*authp = NULL;
}
