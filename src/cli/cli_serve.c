/* `posthorn serve` and `posthorn check-config`: wiring the store, auth, the network server
 * and the SMTP listeners together; SIGHUP reloads the configuration and certificates. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/privdrop.h"
#include "net/server.h"
#include "imap/imap_search_doc.h"
#include "imap/imap_server.h"
#include "mime/imap_structure.h"
#include "net/tls.h"
#include "pop3/pop3_server.h"
#include "smtp/outbound.h"
#include "smtp/smtp_server.h"
#include "core/banned.h"

static const char serve_usage[] =
    "usage: posthorn [-c CONF] serve\n"
    "\n"
    "Runs in the foreground and logs to stderr. SIGTERM or SIGINT: finish the sessions\n"
    "cleanly and exit. SIGHUP: reload the configuration (limits, logging, hostname) and the\n"
    "TLS certificate; listener addresses need a restart.\n";

static const char check_usage[] =
    "usage: posthorn [-c CONF] check-config\n"
    "\n"
    "Reads the configuration and the TLS certificate and key; prints what is wrong, or\n"
    "'configuration ok'.\n";

struct serve {
	struct cli *cli;
	struct conf *conf;
	struct store *store;
	struct auth *auth;
	struct net_server *net;
	struct smtp_server *smtp;
	struct pop3_server *pop3;
	struct imap_server *imap;
	struct imap_listener imap_listeners[CONF_LISTENER_COUNT];
	struct smtp_listener smtp_listeners[CONF_LISTENER_COUNT];
	struct pop3_listener pop3_listeners[CONF_LISTENER_COUNT];
	struct conf_slot outbound_conf;
	bool outbound_conf_set;
	struct outbound *outbound;
};

static int serve_auth_lookup(void *ctx, const char *username, uint64_t *account_id_r,
                             char **password_hash_r)
{
	struct serve *sv = ctx;
	return store_account_lookup(sv->store, username, account_id_r, password_hash_r, NULL);
}

static int serve_apop_lookup(void *ctx, const char *username, uint64_t *account_id_r,
                             char **secret_r)
{
	struct serve *sv = ctx;
	return store_account_get_apop(sv->store, username, account_id_r, secret_r);
}

static void serve_reload(void *ctx)
{
	struct serve *sv = ctx;
	char *error = NULL;
	struct conf *conf = conf_load(sv->cli->conf_path, &error);
	if (conf == NULL) {
		log_error("event=reload result=failed error=\"%s\"", error);
		free(error);
		return;
	}
	const char *tls_error;
	if (net_server_load_tls(sv->net, conf->tls_cert, conf->tls_key, conf->tls_sni,
	                        conf->tls_sni_count, &tls_error) < 0)
		log_error("event=reload tls=failed error=\"%s\" (keeping the old certificates)",
		          tls_error);
	else
		log_info("event=reload tls=ok sni_names=%zu", conf->tls_sni_count);
	log_setup(conf->log_level, conf->log_syslog);
	net_server_set_limits(sv->net, &conf->limits);
	smtp_server_set_conf(sv->smtp, conf);
	pop3_server_set_conf(sv->pop3, conf);
	imap_server_set_conf(sv->imap, conf);
	store_set_tombstone_retention(sv->store, conf->imap_expunge_retention, 0);
	if (sv->outbound_conf_set)
		conf_slot_set(&sv->outbound_conf, conf);
	conf_free(&sv->conf);
	sv->conf = conf;
	log_info("event=reload result=ok");
}

static void serve_stop(void *ctx)
{
	struct serve *sv = ctx;
	outbound_stop(sv->outbound);
}

static const char *const serve_kind_names[] = {"smtp",  "submission", "submissions", "pop3",
                                               "pop3s", "imap",       "imaps"};

/* What a listener kind starts: the protocol's accept function and its context. */
static void serve_kind(struct serve *sv, int k, conn_accept_fn **fn_r, void **ctx_r,
                       const char **busy_r, bool *tls_r)
{
	switch (k) {
	case CONF_LISTENER_IMAP:
	case CONF_LISTENER_IMAPS:
		sv->imap_listeners[k] = (struct imap_listener){sv->imap, k == CONF_LISTENER_IMAPS};
		*fn_r = imap_server_accept;
		*ctx_r = &sv->imap_listeners[k];
		*busy_r = IMAP_SERVER_BUSY_REPLY;
		*tls_r = k == CONF_LISTENER_IMAPS;
		return;
	case CONF_LISTENER_POP3:
	case CONF_LISTENER_POP3S:
		sv->pop3_listeners[k] = (struct pop3_listener){sv->pop3, k == CONF_LISTENER_POP3S};
		*fn_r = pop3_server_accept;
		*ctx_r = &sv->pop3_listeners[k];
		*busy_r = POP3_SERVER_BUSY_REPLY;
		*tls_r = k == CONF_LISTENER_POP3S;
		return;
	default:
		sv->smtp_listeners[k] =
		    (struct smtp_listener){sv->smtp, (enum conf_listener_kind)k};
		*fn_r = smtp_server_accept;
		*ctx_r = &sv->smtp_listeners[k];
		*busy_r = SMTP_SERVER_BUSY_REPLY;
		*tls_r = k == CONF_LISTENER_SUBMISSIONS;
		return;
	}
}

static int serve_listen(struct serve *sv)
{
	for (int k = 0; k < CONF_LISTENER_COUNT; k++) {
		conn_accept_fn *fn;
		void *ctx;
		const char *busy;
		bool tls;
		serve_kind(sv, k, &fn, &ctx, &busy, &tls);
		for (size_t i = 0; i < sv->conf->listen_count[k]; i++) {
			const struct conf_listen *l = &sv->conf->listen[k][i];
			const char *error;
			/* port 25 has smtp_connection_rate_per_ip (smtp_policy.c) */
			bool rate = k != CONF_LISTENER_SMTP;
			if (net_server_listen(sv->net, l->host, l->port, tls, rate, fn, ctx, busy,
			                      &error) < 0) {
				log_error("%s", error);
				return -1;
			}
			log_info("event=listen proto=%s address=%s port=%d", serve_kind_names[k],
			         l->host, l->port);
		}
	}
	return 0;
}

static int serve_run(struct serve *sv)
{
	const char *error;
	if (store_open_engine(sv->conf->data_dir, sv->conf->store_engine, sv->conf->store_url,
	                      &sv->store, &error) < 0) {
		log_error("cannot open the store in %s: %s", sv->conf->data_dir, error);
		return 1;
	}
	/* ENVELOPE and BODYSTRUCTURE are computed once, at delivery (issue 5). */
	store_set_inline_max(sv->store, sv->conf->store_inline_max);
	store_set_read_threads(sv->store, sv->conf->store_read_threads);
	store_set_summarizer(sv->store, imap_structure_summarize, NULL);
	/* SEARCH BODY/TEXT from text decoded once (imap_search_doc_index_fd()). */
	store_set_search_texter(sv->store, imap_search_doc_index_fd, NULL,
	                        (size_t)sv->conf->search_index_max_text);
	/* QRESYNC tombstones older than this go, hourly, on the writer thread. */
	store_set_tombstone_retention(sv->store, sv->conf->imap_expunge_retention, 0);
	/* auth_workers and auth_cache_* take effect at start (a reload keeps them). */
	sv->auth = auth_new(serve_auth_lookup, sv, sv->conf->auth_workers);
	auth_set_cache(sv->auth, sv->conf->auth_cache_ttl, sv->conf->auth_cache_size);
	auth_set_lookups_wait(sv->auth, store_reads_wait(sv->store));
	auth_set_apop_lookup(sv->auth, serve_apop_lookup, sv);
	sv->net = net_server_new(sv->conf->threads, &sv->conf->limits);
	if (net_server_load_tls(sv->net, sv->conf->tls_cert, sv->conf->tls_key, sv->conf->tls_sni,
	                        sv->conf->tls_sni_count, &error) < 0) {
		log_error("TLS: %s", error);
		return 1;
	}
	sv->smtp = smtp_server_new(sv->store, sv->auth, sv->conf);
	sv->pop3 = pop3_server_new(sv->store, sv->auth, sv->conf);
	sv->imap = imap_server_new(sv->store, sv->auth, sv->conf);
	if (serve_listen(sv) < 0)
		return 1;
	if (privdrop_to_user(sv->conf->run_user, sv->conf->data_dir, &error) < 0) {
		log_error("%s", error);
		return 1;
	}
	if (geteuid() == 0)
		log_warn("running as root: set 'user' in %s", sv->cli->conf_path);
	net_server_set_reload_hook(sv->net, serve_reload, sv);
	/* Outbound delivery runs on the first loop, after the privileges are dropped. */
	conf_slot_init(&sv->outbound_conf, sv->conf);
	sv->outbound_conf_set = true;
	sv->outbound = outbound_new(sv->net, sv->store, &sv->outbound_conf, &error);
	if (sv->outbound == NULL) {
		log_error("outbound delivery: %s", error);
		return 1;
	}
	net_server_set_stop_hook(sv->net, serve_stop, sv);
	log_info("event=started hostname=%s pid=%d", sv->conf->hostname, (int)getpid());
	int ret = net_server_run(sv->net) < 0 ? 1 : 0;
	log_info("event=stopped");
	return ret;
}

int cli_serve(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, serve_usage))
		return 0;
	if (argc != 1) {
		fputs(serve_usage, stderr);
		return 2;
	}
	struct serve sv = {.cli = cli};
	sv.conf = cli_load_conf(cli);
	if (sv.conf == NULL)
		return 1;
	log_setup(sv.conf->log_level, sv.conf->log_syslog);
	fault_init_env(); /* test builds: POSTHORN_FAULT (core/fault.h) */
	int ret = serve_run(&sv);
	/* The engine's events live on a loop of the server: it goes first. */
	outbound_free(&sv.outbound);
	if (sv.outbound_conf_set)
		conf_slot_deinit(&sv.outbound_conf);
	/* Order: no more sessions (net), then no more verifications (auth), then the store
	 * (its close finishes every queued delivery). */
	net_server_free(&sv.net);
	auth_free(&sv.auth);
	smtp_server_free(&sv.smtp);
	pop3_server_free(&sv.pop3);
	imap_server_free(&sv.imap);
	store_close(&sv.store);
	conf_free(&sv.conf);
	return ret;
}

int cli_check_config(struct cli *cli, int argc, char **argv)
{
	if (cli_wants_help(argc, argv, check_usage))
		return 0;
	struct conf *conf = cli_load_conf(cli);
	if (conf == NULL)
		return 1;
	const char *error;
	char smtp_error[512];
	struct tls_ctx *tls = tls_ctx_load(conf->tls_cert, conf->tls_key, &error);
	int ret = 0;
	for (size_t i = 0; tls != NULL && i < conf->tls_sni_count; i++) {
		const struct conf_tls_sni *e = &conf->tls_sni[i];
		if (tls_ctx_add_sni(tls, e->name, e->cert, e->key, &error) < 0)
			tls_ctx_unref(&tls);
	}
	if (tls == NULL)
		ret = cli_fail("TLS: %s", error);
	else if (access(conf->data_dir, R_OK | W_OK | X_OK) != 0)
		ret = cli_fail("data_dir %s is not a writable directory", conf->data_dir);
	else if (outbound_check_conf(conf, &error) < 0)
		ret = cli_fail("%s", error);
	else if (smtp_server_check_conf(conf, smtp_error, sizeof(smtp_error)) < 0)
		ret = cli_fail("%s", smtp_error);
	else
		puts("configuration ok");
	tls_ctx_unref(&tls);
	conf_free(&conf);
	return ret;
}
