/* The login driver shared by SMTP, POP3 and IMAP (see auth_login.h): one small state
 * machine over sasl_server, the authentication cache, the password workers, APOP and the
 * per-IP penalty, so that each protocol only frames lines and picks reply codes. */
#include "auth/auth_login.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

enum auth_login_wait {
	AUTH_LOGIN_WAIT_VERIFY, /* auth_verify(): cache, then a hasher */
	AUTH_LOGIN_WAIT_APOP,   /* the APOP secret look-up */
	AUTH_LOGIN_WAIT_SCRAM,  /* the SCRAM keys look-up, before the server-first message */
};

struct auth_login {
	struct auth *auth;
	char *remote_ip; /* NULL: not from the network */
	void (*wake)(void *ctx);
	void *ctx;

	struct sasl_server *sasl;
	uint64_t scram_account; /* SCRAM: the account whose keys were handed over */
	bool pending;
	enum auth_login_wait waiting; /* what a PENDING status waits for */
	int lookup_result;            /* APOP and SCRAM look-ups on a look-up thread */
	uint64_t lookup_account;
	char *banner, *digest; /* APOP's, while its look-up runs */
	struct auth_request req;
	char *authzid, *user, *password; /* the request's strings; password wiped */
	struct auth_login_result result;
};

struct auth_login *auth_login_new(struct auth *auth, const char *remote_ip, void (*wake)(void *ctx),
                                  void *ctx)
{
	struct auth_login *login = xcalloc(1, sizeof(*login));
	login->auth = auth;
	login->remote_ip = remote_ip != NULL ? xstrdup(remote_ip) : NULL;
	login->wake = wake;
	login->ctx = ctx;
	login->result.user = "";
	login->result.mech = "";
	return login;
}

static void auth_login_wipe(char **s)
{
	if (*s == NULL)
		return;
	xmemzero(*s, strlen(*s));
	free(*s);
	*s = NULL;
}

void auth_login_free(struct auth_login **loginp)
{
	struct auth_login *login = *loginp;
	if (login == NULL)
		return;
	ASSERT(!login->pending);
	sasl_server_free(&login->sasl);
	auth_login_wipe(&login->password);
	auth_login_wipe(&login->digest);
	free(login->banner);
	free(login->authzid);
	free(login->user);
	free(login->remote_ip);
	xmemzero(login, sizeof(*login));
	free(login);
	*loginp = NULL;
}

const struct auth_login_result *auth_login_result(const struct auth_login *login)
{
	return &login->result;
}

static void auth_login_set_user(struct auth_login *login, const char *user)
{
	free(login->user);
	login->user = xstrdup(user);
	login->result.user = login->user;
}

/* A verdict reached outside the workers (SCRAM, APOP): into the penalty, then DONE. */
static enum auth_login_status auth_login_verdict(struct auth_login *login, int result,
                                                 uint64_t account_id)
{
	login->result.result = result;
	login->result.account_id = result == 1 ? account_id : 0;
	login->result.delay_ms = 0;
	login->result.cached = false;
	if (result >= 0)
		auth_record_result(login->auth, login->remote_ip, result == 1,
		                   &login->result.delay_ms);
	return AUTH_LOGIN_DONE;
}

/* On the worker thread: the request is complete and the worker no longer touches it, so
 * the login may be freed from here on (the protocol's wake, e.g. conn_wake(), orders this
 * before the loop thread's next look). */
static void auth_login_finished(struct auth_login *login)
{
	login->pending = false;
	login->wake(login->ctx);
}

static void auth_login_worker_done(struct auth_request *req, void *ctx)
{
	(void)req;
	auth_login_finished(ctx);
}

/* Hand fn to a look-up thread; the login is PENDING until it calls auth_login_finished(). */
static enum auth_login_status
auth_login_wait_lookup(struct auth_login *login, enum auth_login_wait what, void (*fn)(void *ctx))
{
	login->pending = true;
	login->waiting = what;
	auth_run_lookup(login->auth, fn, login);
	return AUTH_LOGIN_PENDING;
}

/* The password check's answer into the result. */
static enum auth_login_status auth_login_verified(struct auth_login *login)
{
	auth_login_wipe(&login->password);
	login->req.password = NULL;
	login->result.result = login->req.result;
	login->result.account_id = login->req.result == 1 ? login->req.account_id : 0;
	login->result.delay_ms = login->req.result == 0 ? login->req.delay_ms : 0;
	login->result.cached = login->req.cached;
	return AUTH_LOGIN_DONE;
}

enum auth_login_status auth_login_password(struct auth_login *login, const char *authzid,
                                           const char *user, const char *password)
{
	ASSERT(!login->pending);
	if (login->result.mech[0] == '\0')
		login->result.mech = "USER";
	auth_login_set_user(login, user);
	free(login->authzid);
	login->authzid = xstrdup(authzid != NULL ? authzid : "");
	auth_login_wipe(&login->password);
	login->password = xstrdup(password);
	login->req = (struct auth_request){
	    .authzid = login->authzid,
	    .username = login->user,
	    .password = login->password,
	    .remote_ip = login->remote_ip,
	};
	if (!auth_lookups_wait(login->auth) && auth_verify_cached(login->auth, &login->req) == 1)
		return auth_login_verified(login);
	login->pending = true;
	login->waiting = AUTH_LOGIN_WAIT_VERIFY;
	auth_verify(login->auth, &login->req, auth_login_worker_done, login);
	return AUTH_LOGIN_PENDING;
}

static void auth_login_apop_lookup(void *ctx)
{
	struct auth_login *login = ctx;
	login->lookup_result = auth_verify_apop(login->auth, login->banner, login->user,
	                                        login->digest, &login->lookup_account);
	auth_login_finished(login);
}

enum auth_login_status auth_login_apop(struct auth_login *login, const char *banner,
                                       const char *user, const char *digest)
{
	ASSERT(!login->pending);
	login->result.mech = "APOP";
	auth_login_set_user(login, user);
	if (auth_lookups_wait(login->auth)) {
		free(login->banner);
		login->banner = xstrdup(banner);
		auth_login_wipe(&login->digest);
		login->digest = xstrdup(digest);
		return auth_login_wait_lookup(login, AUTH_LOGIN_WAIT_APOP, auth_login_apop_lookup);
	}
	uint64_t id = 0;
	int r = auth_verify_apop(login->auth, banner, user, digest, &id);
	return auth_login_verdict(login, r, id);
}

static void auth_login_scram_lookup(void *ctx)
{
	struct auth_login *login = ctx;
	login->lookup_result =
	    auth_sasl_set_credentials(login->auth, login->sasl, &login->scram_account);
	auth_login_finished(login);
}

static enum auth_login_status
auth_login_scram_keys_set(struct auth_login *login, const char **challenge_r, const char **error_r);
static enum auth_login_status auth_login_sasl_after(struct auth_login *login, int r,
                                                    const char *response, const char **error_r);

/* One SASL step's outcome turned into the login's status. */
static enum auth_login_status auth_login_sasl_step(struct auth_login *login, const char *response,
                                                   const char **challenge_r, const char **error_r)
{
	*challenge_r = "";
	int r = sasl_server_step(login->sasl, response, challenge_r, error_r);
	if (r == 2) {
		/* SCRAM needs the user's stored keys before its server-first message: one
		 * account look-up, no hashing (on a look-up thread where look-ups may wait). */
		auth_login_set_user(login, sasl_server_username(login->sasl));
		if (auth_lookups_wait(login->auth))
			return auth_login_wait_lookup(login, AUTH_LOGIN_WAIT_SCRAM,
			                              auth_login_scram_lookup);
		login->lookup_result =
		    auth_sasl_set_credentials(login->auth, login->sasl, &login->scram_account);
		return auth_login_scram_keys_set(login, challenge_r, error_r);
	}
	return auth_login_sasl_after(login, r, response, error_r);
}

/* SCRAM's keys are looked up: fail, or send the server-first message. */
static enum auth_login_status
auth_login_scram_keys_set(struct auth_login *login, const char **challenge_r, const char **error_r)
{
	if (login->lookup_result < 0) {
		sasl_server_free(&login->sasl);
		return auth_login_verdict(login, -1, 0);
	}
	int r = sasl_server_step(login->sasl, NULL, challenge_r, error_r);
	return auth_login_sasl_after(login, r, NULL, error_r);
}

/* What sasl_server_step() returned (r) for response, as the login's status (a challenge
 * is already in the step's *challenge_r). */
static enum auth_login_status auth_login_sasl_after(struct auth_login *login, int r,
                                                    const char *response, const char **error_r)
{
	if (r < 0) {
		bool cancel = response != NULL && strcmp(response, "*") == 0;
		sasl_server_free(&login->sasl);
		if (cancel)
			*error_r = "cancelled by client";
		return cancel ? AUTH_LOGIN_CANCELLED : AUTH_LOGIN_MALFORMED;
	}
	if (r == 0)
		return AUTH_LOGIN_CHALLENGE;
	int outcome = sasl_server_outcome(login->sasl);
	if (outcome >= 0) {
		sasl_server_free(&login->sasl);
		return auth_login_verdict(login, outcome, login->scram_account);
	}
	const char *authzid, *authcid, *password;
	sasl_server_credentials(login->sasl, &authzid, &authcid, &password);
	enum auth_login_status st = auth_login_password(login, authzid, authcid, password);
	sasl_server_free(&login->sasl);
	return st;
}

enum auth_login_status auth_login_sasl_start(struct auth_login *login, enum sasl_mech mech,
                                             const char *initial_b64, const char **challenge_r,
                                             const char **error_r)
{
	ASSERT(login->sasl == NULL && !login->pending);
	login->result.mech = sasl_mech_name(mech);
	login->sasl = sasl_server_new(mech, 0);
	return auth_login_sasl_step(login, initial_b64, challenge_r, error_r);
}

enum auth_login_status auth_login_sasl_continue(struct auth_login *login, const char *line,
                                                const char **challenge_r, const char **error_r)
{
	ASSERT(login->sasl != NULL);
	return auth_login_sasl_step(login, line, challenge_r, error_r);
}

enum auth_login_status auth_login_resume(struct auth_login *login, const char **challenge_r,
                                         const char **error_r)
{
	ASSERT(!login->pending);
	*challenge_r = "";
	*error_r = "";
	switch (login->waiting) {
	case AUTH_LOGIN_WAIT_APOP:
		auth_login_wipe(&login->digest);
		free(login->banner);
		login->banner = NULL;
		return auth_login_verdict(login, login->lookup_result, login->lookup_account);
	case AUTH_LOGIN_WAIT_SCRAM:
		return auth_login_scram_keys_set(login, challenge_r, error_r);
	case AUTH_LOGIN_WAIT_VERIFY:
		break;
	}
	return auth_login_verified(login);
}
