/* Unit tests for net/dns (the libunbound glue) on a standalone loop: an answer libunbound
 * has at hand still comes from the loop, never inside dns_lookup(); a server that never
 * answers gives TEMPFAIL "timeout" after dns_timeout, and it was asked even for a .test name
 * (libunbound's built-in zones are off with dns_resolver); a cancelled lookup never calls
 * back; freeing a resolver with lookups pending calls nobody back; a callback may free the
 * resolver (with another lookup pending); bad names are refused. Also the loop API that
 * modules outside net/ use: net_loop_call() from another thread, net_server_loop(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/conf.h"
#include "net/dns.h"
#include "net/server.h"
#include "core/banned.h"

struct calls {
	struct net_loop *loop;
	unsigned count;
	enum dns_status status;
	char reason[64];
	char first[64];
	bool stop_after;
};

static void on_result(const struct dns_result *res, void *ctx)
{
	struct calls *c = ctx;
	c->count++;
	c->status = res->status;
	snprintf(c->reason, sizeof(c->reason), "%s", res->reason != NULL ? res->reason : "");
	if (res->count > 0 && (res->type == DNS_TYPE_A || res->type == DNS_TYPE_AAAA))
		snprintf(c->first, sizeof(c->first), "%s", res->records[0].u.addr.text);
	if (c->stop_after)
		net_loop_stop(c->loop);
}

static struct conf *conf_text(const char *text)
{
	char *error = NULL;
	struct conf *conf = conf_parse("/tmp/posthorn-test.conf", text, strlen(text), &error);
	if (conf == NULL)
		fail_msg("%s", error);
	return conf;
}

/* A UDP socket on 127.0.0.1 that receives queries and never answers. */
static int silent_server(unsigned *port_r)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

static struct conf *silent_conf(unsigned port)
{
	char text[256];
	snprintf(text, sizeof(text), "dns_resolver = 127.0.0.1:%u\ndns_timeout = 1\n", port);
	return conf_text(text);
}

static void test_local_answer_deferred(void **state)
{
	(void)state;
	struct conf *conf = conf_text("dns_trust_anchor = none\n");
	struct net_loop *loop = net_loop_new();
	const char *error;
	struct dns_resolver *res = dns_resolver_new(loop, conf, &error);
	assert_non_null(res);
	struct calls c = {.loop = loop, .stop_after = true};
	/* libunbound answers localhost from its own zone, inside ub_resolve_event() */
	assert_non_null(dns_lookup(res, "LocalHost.", DNS_TYPE_A, on_result, &c, &error));
	assert_int_equal(c.count, 0);
	assert_int_equal(dns_resolver_pending(res), 1);
	net_loop_run(loop);
	assert_int_equal(c.count, 1);
	assert_int_equal(c.status, DNS_STATUS_OK);
	assert_string_equal(c.first, "127.0.0.1");
	assert_int_equal(dns_resolver_pending(res), 0);
	dns_resolver_free(&res);
	assert_null(res);
	net_loop_free(&loop);
	conf_free(&conf);
}

static void test_timeout_and_test_names_asked(void **state)
{
	(void)state;
	unsigned port;
	int fd = silent_server(&port);
	struct conf *conf = silent_conf(port);
	struct net_loop *loop = net_loop_new();
	const char *error;
	struct dns_resolver *res = dns_resolver_new(loop, conf, &error);
	assert_non_null(res);
	struct calls c = {.loop = loop, .stop_after = true};
	assert_non_null(dns_lookup(res, "mx.example.test", DNS_TYPE_MX, on_result, &c, &error));
	net_loop_run(loop);
	assert_int_equal(c.count, 1);
	assert_int_equal(c.status, DNS_STATUS_TEMPFAIL);
	assert_string_equal(c.reason, "timeout");
	/* the configured server was asked (libunbound did not answer .test itself) */
	unsigned char buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	assert_true(n > 12);
	dns_resolver_free(&res);
	net_loop_free(&loop);
	conf_free(&conf);
	close(fd);
}

static void test_cancel(void **state)
{
	(void)state;
	unsigned port;
	int fd = silent_server(&port);
	struct conf *conf = silent_conf(port);
	struct net_loop *loop = net_loop_new();
	const char *error;
	struct dns_resolver *res = dns_resolver_new(loop, conf, &error);
	assert_non_null(res);
	struct calls cancelled = {.loop = loop};
	struct calls last = {.loop = loop, .stop_after = true};
	struct dns_lookup *l =
	    dns_lookup(res, "gone.example.test", DNS_TYPE_A, on_result, &cancelled, &error);
	assert_non_null(l);
	/* a cancelled lookup whose answer libunbound already had */
	struct dns_lookup *local =
	    dns_lookup(res, "localhost", DNS_TYPE_A, on_result, &cancelled, &error);
	assert_non_null(local);
	assert_non_null(
	    dns_lookup(res, "other.example.test", DNS_TYPE_A, on_result, &last, &error));
	assert_int_equal(dns_resolver_pending(res), 3);
	dns_lookup_cancel(&l);
	dns_lookup_cancel(&local);
	assert_null(l);
	assert_int_equal(dns_resolver_pending(res), 1);
	net_loop_run(loop); /* until "other" times out, after "gone" would have */
	assert_int_equal(last.count, 1);
	assert_int_equal(cancelled.count, 0);
	dns_resolver_free(&res);
	net_loop_free(&loop);
	conf_free(&conf);
	close(fd);
}

static void test_free_with_pending(void **state)
{
	(void)state;
	unsigned port;
	int fd = silent_server(&port);
	struct conf *conf = silent_conf(port);
	struct net_loop *loop = net_loop_new();
	const char *error;
	struct dns_resolver *res = dns_resolver_new(loop, conf, &error);
	assert_non_null(res);
	struct calls c = {.loop = loop};
	assert_non_null(dns_lookup(res, "a.example.test", DNS_TYPE_A, on_result, &c, &error));
	assert_non_null(dns_lookup(res, "localhost", DNS_TYPE_AAAA, on_result, &c, &error));
	dns_resolver_free(&res);
	net_loop_run(loop); /* nothing left: returns at once */
	assert_int_equal(c.count, 0);
	net_loop_free(&loop);
	conf_free(&conf);
	close(fd);
}

struct quick {
	int fd;
	bool stop;
	bool answer_slow; /* also answer "slow*" names */
};

/* A server thread that answers every query for "quick*.*" with A 127.0.0.9 and ignores the
 * rest, until stop is set. */
static void *quick_server(void *arg)
{
	struct quick *qs = arg;
	int fd = qs->fd;
	while (!__atomic_load_n(&qs->stop, __ATOMIC_SEQ_CST)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 100) < 0)
			break;
		if (pfd.revents == 0)
			continue;
		unsigned char q[512];
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, q, sizeof(q) - 32, 0, (struct sockaddr *)&from, &fromlen);
		bool slow = __atomic_load_n(&qs->answer_slow, __ATOMIC_SEQ_CST) && n > 18 &&
		            q[12] >= 4 && memcmp(q + 13, "slow", 4) == 0;
		if (!slow && (n <= 18 || q[12] < 5 || memcmp(q + 13, "quick", 5) != 0))
			continue;
		/* the question ends at its name's root label + type + class; drop any EDNS */
		size_t end = 12;
		while (end < (size_t)n && q[end] != 0)
			end += (size_t)q[end] + 1;
		end += 5;
		q[2] = 0x84; /* QR AA, RD kept off */
		q[3] = 0x00;
		q[7] = 1;  /* one answer */
		q[11] = 0; /* no additional */
		const unsigned char rr[] = {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 9};
		memcpy(q + end, rr, sizeof(rr));
		(void)sendto(fd, q, end + sizeof(rr), 0, (struct sockaddr *)&from, fromlen);
	}
	return NULL;
}

struct free_in_callback {
	struct dns_resolver *res;
	struct net_loop *loop;
	unsigned count;
	char addr[64];
};

static void on_result_free(const struct dns_result *result, void *ctx)
{
	struct free_in_callback *f = ctx;
	f->count++;
	if (result->count > 0)
		snprintf(f->addr, sizeof(f->addr), "%s", result->records[0].u.addr.text);
	dns_resolver_free(&f->res); /* the other lookup is still pending */
	net_loop_stop(f->loop);
}

static void test_callback_frees_resolver(void **state)
{
	(void)state;
	unsigned port;
	struct quick qs = {.fd = silent_server(&port)};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, quick_server, &qs), 0);
	struct conf *conf = silent_conf(port);
	struct net_loop *loop = net_loop_new();
	const char *error;
	struct free_in_callback f = {.loop = loop};
	f.res = dns_resolver_new(loop, conf, &error);
	assert_non_null(f.res);
	struct calls never = {.loop = loop};
	assert_non_null(
	    dns_lookup(f.res, "slow.example.test", DNS_TYPE_A, on_result, &never, &error));
	assert_non_null(
	    dns_lookup(f.res, "quick.example.test", DNS_TYPE_A, on_result_free, &f, &error));
	net_loop_run(loop);
	assert_int_equal(f.count, 1);
	assert_string_equal(f.addr, "127.0.0.9");
	assert_null(f.res);
	net_loop_run(loop); /* nothing of the resolver is left on the loop */
	assert_int_equal(never.count, 0);
	__atomic_store_n(&qs.stop, true, __ATOMIC_SEQ_CST);
	pthread_join(thread, NULL);
	close(qs.fd);
	net_loop_free(&loop);
	conf_free(&conf);
}

struct loop_call {
	struct net_loop *loop;
	pthread_t loop_thread;
	bool ran, on_loop_thread;
};

static void loop_call_fn(void *ctx)
{
	struct loop_call *lc = ctx;
	lc->ran = true;
	lc->on_loop_thread = pthread_equal(pthread_self(), lc->loop_thread) != 0;
	net_loop_stop(lc->loop);
}

static void *loop_call_thread(void *arg)
{
	struct loop_call *lc = arg;
	net_loop_call(lc->loop, loop_call_fn, lc);
	return NULL;
}

static void test_loop_call_from_thread(void **state)
{
	(void)state;
	unsigned port;
	int fd = silent_server(&port);
	struct conf *conf = silent_conf(port);
	struct loop_call lc = {.loop = net_loop_new(), .loop_thread = pthread_self()};
	const char *error;
	struct dns_resolver *res = dns_resolver_new(lc.loop, conf, &error);
	assert_non_null(res);
	/* a pending lookup keeps the loop running until the call comes */
	struct calls c = {.loop = lc.loop};
	assert_non_null(dns_lookup(res, "wait.example.test", DNS_TYPE_A, on_result, &c, &error));
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, loop_call_thread, &lc), 0);
	net_loop_run(lc.loop);
	pthread_join(thread, NULL);
	assert_true(lc.ran);
	assert_true(lc.on_loop_thread);
	assert_int_equal(c.count, 0); /* the loop stopped before the lookup's timeout */
	dns_resolver_free(&res);
	net_loop_free(&lc.loop);
	conf_free(&conf);
	close(fd);
}

static void test_server_loops(void **state)
{
	(void)state;
	struct conf *conf = conf_text("");
	struct net_server *server = net_server_new(3, &conf->limits);
	assert_int_equal(net_server_loop_count(server), 3);
	struct net_loop *a = net_server_loop(server, 0), *b = net_server_loop(server, 2);
	assert_non_null(a);
	assert_true(a != b);
	/* a resolver can be set up on a server loop before the loops run */
	const char *error;
	struct dns_resolver *res = dns_resolver_new(b, conf, &error);
	assert_non_null(res);
	dns_resolver_free(&res);
	net_server_free(&server);
	conf_free(&conf);
}

/* A long-running resolver (the server's): after lookups that timed out, the same server
 * is still asked and its answers used (libunbound's infrastructure cache must not write
 * the server off while a test drops some names). */
static void test_server_used_after_timeouts(void **state)
{
	(void)state;
	unsigned port;
	struct quick qs = {.fd = silent_server(&port)};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, quick_server, &qs), 0);
	struct conf *conf = silent_conf(port);
	struct net_loop *loop = net_loop_new();
	const char *error;
	struct dns_resolver *res = dns_resolver_new(loop, conf, &error);
	assert_non_null(res);
	for (int round = 0; round < 3; round++) {
		struct calls slow = {.loop = loop, .stop_after = true};
		char name[64];
		snprintf(name, sizeof(name), "slow%d.example.test", round);
		assert_non_null(dns_lookup(res, name, DNS_TYPE_A, on_result, &slow, &error));
		net_loop_run(loop);
		assert_int_equal(slow.status, DNS_STATUS_TEMPFAIL);
		struct calls quick = {.loop = loop, .stop_after = true};
		snprintf(name, sizeof(name), "quick%d.example.test", round);
		assert_non_null(dns_lookup(res, name, DNS_TYPE_A, on_result, &quick, &error));
		net_loop_run(loop);
		if (quick.status != DNS_STATUS_OK)
			fail_msg("round %d: %s %s", round, dns_status_name(quick.status),
			         quick.reason);
		assert_string_equal(quick.first, "127.0.0.9");
	}
	dns_resolver_free(&res);
	__atomic_store_n(&qs.stop, true, __ATOMIC_SEQ_CST);
	pthread_join(thread, NULL);
	close(qs.fd);
	net_loop_free(&loop);
	conf_free(&conf);
}

/* A name whose lookup timed out resolves as soon as the server answers it again (the
 * lookup is not stuck behind libunbound's retries of the timed-out one). */
static void test_same_name_after_timeout(void **state)
{
	(void)state;
	unsigned port;
	struct quick qs = {.fd = silent_server(&port)};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, quick_server, &qs), 0);
	struct conf *conf = silent_conf(port);
	struct net_loop *loop = net_loop_new();
	const char *error;
	struct dns_resolver *res = dns_resolver_new(loop, conf, &error);
	assert_non_null(res);
	struct calls first = {.loop = loop, .stop_after = true};
	assert_non_null(
	    dns_lookup(res, "slow.example.test", DNS_TYPE_A, on_result, &first, &error));
	net_loop_run(loop);
	assert_int_equal(first.status, DNS_STATUS_TEMPFAIL);
	__atomic_store_n(&qs.answer_slow, true, __ATOMIC_SEQ_CST);
	struct calls again = {.loop = loop, .stop_after = true};
	assert_non_null(
	    dns_lookup(res, "slow.example.test", DNS_TYPE_A, on_result, &again, &error));
	net_loop_run(loop);
	if (again.status != DNS_STATUS_OK)
		fail_msg("%s %s", dns_status_name(again.status), again.reason);
	assert_string_equal(again.first, "127.0.0.9");
	dns_resolver_free(&res);
	__atomic_store_n(&qs.stop, true, __ATOMIC_SEQ_CST);
	pthread_join(thread, NULL);
	close(qs.fd);
	net_loop_free(&loop);
	conf_free(&conf);
}

static void test_invalid(void **state)
{
	(void)state;
	struct conf *conf = conf_text("dns_resolver = 127.0.0.1:9\n");
	struct net_loop *loop = net_loop_new();
	const char *error = NULL;
	struct dns_resolver *res = dns_resolver_new(loop, conf, &error);
	assert_non_null(res);
	struct calls c = {.loop = loop};
	const char *bad[] = {"", ".", "a..b", "a b.test", "x\\.y", ".example.test"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		assert_null(dns_lookup(res, bad[i], DNS_TYPE_A, on_result, &c, &error));
		assert_string_equal(error, "invalid domain name");
	}
	char longname[300];
	memset(longname, 'a', 64); /* a label of 64 octets */
	memcpy(longname + 64, ".test", 6);
	assert_null(dns_lookup(res, longname, DNS_TYPE_A, on_result, &c, &error));
	assert_null(dns_lookup(res, "example.test", 2 /* NS */, on_result, &c, &error));
	assert_string_equal(error, "unsupported record type");
	assert_int_equal(dns_resolver_pending(res), 0);
	dns_resolver_free(&res);
	net_loop_run(loop);
	assert_int_equal(c.count, 0);
	net_loop_free(&loop);
	conf_free(&conf);
}

/* The loop's own resolver (dns_loop_resolver): made once, the same on every call, freed
 * with the loop even with a lookup pending (whose callback never runs); a failure to make
 * it is retried on the next call. PTR lookups are accepted. */
static void test_loop_resolver(void **state)
{
	(void)state;
	unsigned port;
	int fd = silent_server(&port);
	struct conf *conf = silent_conf(port);
	struct conf *bad = conf_text("dns_trust_anchor = /nonexistent/root.key\n");
	struct net_loop *loop = net_loop_new();
	const char *error = NULL;
	assert_null(dns_loop_resolver(loop, bad, &error));
	assert_non_null(error);
	struct dns_resolver *res = dns_loop_resolver(loop, conf, &error);
	assert_non_null(res);
	assert_ptr_equal(dns_loop_resolver(loop, bad, &error), res);
	struct calls c = {.loop = loop};
	assert_non_null(
	    dns_lookup(res, "1.0.0.127.in-addr.arpa", DNS_TYPE_PTR, on_result, &c, &error));
	assert_int_equal(dns_resolver_pending(res), 1);
	net_loop_free(&loop); /* frees the resolver and its pending lookup */
	assert_int_equal(c.count, 0);
	conf_free(&conf);
	conf_free(&bad);
	close(fd);
}

static void test_bad_anchor(void **state)
{
	(void)state;
	struct conf *conf = conf_text("dns_trust_anchor = /nonexistent/root.key\n");
	struct net_loop *loop = net_loop_new();
	const char *error = NULL;
	assert_null(dns_resolver_new(loop, conf, &error));
	assert_string_equal(error, "cannot read dns_trust_anchor");
	net_loop_free(&loop);
	conf_free(&conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_local_answer_deferred),
	    cmocka_unit_test(test_timeout_and_test_names_asked),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_free_with_pending),
	    cmocka_unit_test(test_callback_frees_resolver),
	    cmocka_unit_test(test_loop_call_from_thread),
	    cmocka_unit_test(test_server_loops),
	    cmocka_unit_test(test_server_used_after_timeouts),
	    cmocka_unit_test(test_same_name_after_timeout),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_loop_resolver),
	    cmocka_unit_test(test_bad_anchor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
