/* libunbound on our event loops (see dns.h). Every answer is kept and handed to the caller
 * from the lookup's own event: libunbound answers some questions inside ub_resolve_event()
 * itself (its local zones), so a callback never runs inside dns_lookup(), nor inside
 * libunbound. The same event is the timeout: dns_timeout seconds without an answer end the
 * lookup as TEMPFAIL. */
#include "net/dns.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound-event.h>
#include <unbound.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/net_private.h"
#include "core/banned.h"

#define DNS_DEBIAN_ROOT_KEY "/usr/share/dns/root.key"
#define DNS_CLASS_IN 1
#define DNS_UB_SEC_BOGUS 1
#define DNS_UB_SEC_SECURE 2
#define DNS_RESULT_ARENA 4096

/* The zones libunbound serves itself by default (RFC 6303 and RFC 6761 names: localhost,
 * reverse loopback, .test, .invalid, .onion, home.arpa, ...). With dns_resolver set every
 * name goes to that server, so each default is replaced by a "transparent" local zone
 * without data (a configured zone keeps the default out, and a transparent zone without
 * data resolves as usual). Not "nodefault": libunbound 1.17's ub_ctx_set_option() stores
 * the whole "NAME nodefault" string as the zone name, so it never matches. The AS112
 * reverse zones of private ranges are turned off as a group with unblock-lan-zones.
 * Naming a zone that a libunbound version does not know is harmless. */
static const char *const dns_default_zones[] = {
    "localhost.",
    "127.in-addr.arpa.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "onion.",
    "test.",
    "invalid.",
    "home.arpa.",
    "resolver.arpa.",
    "service.arpa.",
    "local.",
};

struct dns_resolver {
	struct event_base *base;
	struct ub_ctx *ub;
	unsigned timeout; /* seconds */
	struct dns_lookup *lookups;
	unsigned pending;
};

struct dns_lookup {
	struct dns_resolver *resolver;
	struct dns_lookup *prev, *next;
	dns_lookup_fn *callback;
	void *ctx;
	char *name; /* lower case, no trailing dot */
	uint16_t type;
	int async_id;
	bool in_unbound;     /* libunbound holds this lookup as its callback argument */
	struct event *timer; /* the timeout; also hands over an answer kept from inside */
	/* an answer kept for delivery from the loop */
	bool kept;
	int kept_rcode, kept_sec;
	unsigned char *kept_packet;
	size_t kept_len;
	char *kept_why;
	const char *fail_reason; /* libunbound's refusal of the query (static) */
};

static int dns_set(struct ub_ctx *ub, const char *opt, const char *val, const char **error_r)
{
	int r = ub_ctx_set_option(ub, opt, val);
	if (r != 0) {
		log_error("event=dns-setup option=%s value=\"%s\" error=\"%s\"", opt, val,
		          ub_strerror(r));
		*error_r = "libunbound refused a setting";
		return -1;
	}
	return 0;
}

/* dns_resolver: every query to that one server, with recursion desired. */
static int dns_setup_forward(struct ub_ctx *ub, const struct conf *conf, const char **error_r)
{
	char addr[128];
	snprintf(addr, sizeof(addr), "%s@%u", conf->dns_resolver, conf->dns_resolver_port);
	if (ub_ctx_set_fwd(ub, addr) != 0) {
		*error_r = "libunbound refused dns_resolver";
		return -1;
	}
	/* a resolver on loopback is the usual case (a local unbound, a test server); it is the
	 * only server, so libunbound must keep asking it after timeouts (a cancelled lookup
	 * goes on timing out inside libunbound for minutes) instead of writing it off */
	if (dns_set(ub, "do-not-query-localhost:", "no", error_r) < 0 ||
	    dns_set(ub, "infra-keep-probing:", "yes", error_r) < 0 ||
	    dns_set(ub, "unblock-lan-zones:", "yes", error_r) < 0 ||
	    dns_set(ub, "insecure-lan-zones:", "yes", error_r) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(dns_default_zones) / sizeof(dns_default_zones[0]); i++) {
		char zone[256];
		snprintf(zone, sizeof(zone), "%s transparent", dns_default_zones[i]);
		if (dns_set(ub, "local-zone:", zone, error_r) < 0)
			return -1;
	}
	return 0;
}

/* The trust anchor: the configured file, none, or Debian's root key for the system
 * resolvers (a dns_resolver server need not serve the root's keys: validating its answers
 * against the root would make every answer bogus unless the anchor is named). */
static int dns_setup_anchor(struct ub_ctx *ub, const struct conf *conf, const char **error_r)
{
	const char *file = conf->dns_trust_anchor;
	if (file != NULL && strcmp(file, "none") == 0)
		return 0;
	if (file == NULL || file[0] == '\0') {
		if ((conf->dns_resolver != NULL && conf->dns_resolver[0] != '\0') ||
		    access(DNS_DEBIAN_ROOT_KEY, R_OK) != 0)
			return 0;
		file = DNS_DEBIAN_ROOT_KEY;
	} else if (access(file, R_OK) != 0) {
		*error_r = "cannot read dns_trust_anchor";
		return -1;
	}
	if (ub_ctx_add_ta_file(ub, file) != 0) {
		*error_r = "libunbound refused dns_trust_anchor";
		return -1;
	}
	return 0;
}

struct dns_resolver *dns_resolver_new(struct net_loop *loop, const struct conf *conf,
                                      const char **error_r)
{
	struct event_base *base = net_loop_base(loop);
	struct ub_ctx *ub = ub_ctx_create_event(base);
	if (ub == NULL) {
		*error_r = "cannot create a libunbound context";
		return NULL;
	}
	int r = 0;
	if (conf->dns_resolver != NULL && conf->dns_resolver[0] != '\0') {
		r = dns_setup_forward(ub, conf, error_r);
	} else if (ub_ctx_resolvconf(ub, NULL) != 0) {
		/* libunbound then resolves from the root servers itself */
		log_warn("event=dns-setup error=\"cannot read /etc/resolv.conf\" "
		         "action=recursion-from-root");
	}
	if (r == 0)
		r = dns_setup_anchor(ub, conf, error_r);
	if (r < 0) {
		ub_ctx_delete(ub);
		return NULL;
	}
	struct dns_resolver *res = xcalloc(1, sizeof(*res));
	res->base = base;
	res->ub = ub;
	res->timeout = conf->dns_timeout > 0 ? conf->dns_timeout : 10;
	return res;
}

static void dns_lookup_unlink_free(struct dns_lookup *l)
{
	struct dns_resolver *res = l->resolver;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		res->lookups = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	res->pending--;
	event_free(l->timer);
	free(l->kept_packet);
	free(l->kept_why);
	free(l->name);
	free(l);
}

/* Stop libunbound from calling back for l. */
static void dns_lookup_leave_unbound(struct dns_lookup *l)
{
	if (l->in_unbound) {
		(void)ub_cancel(l->resolver->ub, l->async_id);
		l->in_unbound = false;
	}
}

void dns_resolver_free(struct dns_resolver **resolver)
{
	struct dns_resolver *res = *resolver;
	if (res == NULL)
		return;
	*resolver = NULL;
	while (res->lookups != NULL) {
		dns_lookup_leave_unbound(res->lookups);
		dns_lookup_unlink_free(res->lookups);
	}
	ub_ctx_delete(res->ub);
	free(res);
}

unsigned dns_resolver_pending(const struct dns_resolver *res)
{
	return res->pending;
}

/* Build the result from what libunbound said, and hand it to the requester. */
static void dns_deliver(struct dns_lookup *l, int rcode, const unsigned char *pkt, size_t len,
                        int sec, const char *why)
{
	struct arena *arena = arena_new(DNS_RESULT_ARENA);
	struct dns_result result;
	const char *error;
	if (rcode != 0 || pkt == NULL) {
		memset(&result, 0, sizeof(result));
		result.status = DNS_STATUS_TEMPFAIL;
		result.reason = rcode == -1              ? "timeout"
		                : rcode == 2             ? "SERVFAIL"
		                : rcode == 5             ? "REFUSED"
		                : l->fail_reason != NULL ? l->fail_reason
		                                         : "resolver error";
	} else if (dns_packet_parse(pkt, len, l->type, arena, &result, &error) < 0) {
		memset(&result, 0, sizeof(result));
		result.status = DNS_STATUS_TEMPFAIL;
		result.reason = error;
	} else if (sec == DNS_UB_SEC_BOGUS) {
		result.status = DNS_STATUS_BOGUS;
		result.reason = why != NULL ? arena_strdup(arena, why) : "DNSSEC validation failed";
		result.count = 0;
		result.records = NULL;
		result.ttl = 0;
	} else {
		result.secure = sec == DNS_UB_SEC_SECURE;
	}
	result.type = l->type;
	if (result.name == NULL)
		result.name = result.canonical = arena_strdup(arena, l->name);
	dns_lookup_fn *callback = l->callback;
	void *ctx = l->ctx;
	dns_lookup_unlink_free(l);
	callback(&result, ctx);
	arena_free(&arena);
}

/* libunbound's answer, called from inside libunbound (or even inside ub_resolve_event()):
 * keep it and deliver from our own event, so that the requester's callback may start,
 * cancel or free anything, libunbound's stack being unwound by then. */
static void dns_ub_callback(void *mydata, int rcode, void *packet, int packet_len, int sec,
                            char *why_bogus, int was_ratelimited)
{
	(void)was_ratelimited;
	struct dns_lookup *l = mydata;
	l->in_unbound = false;
	size_t len = packet != NULL && packet_len > 0 ? (size_t)packet_len : 0;
	l->kept = true;
	l->kept_rcode = rcode;
	l->kept_sec = sec;
	if (len > 0) {
		l->kept_packet = xmalloc(len);
		memcpy(l->kept_packet, packet, len);
		l->kept_len = len;
	}
	l->kept_why = why_bogus != NULL ? xstrdup(why_bogus) : NULL;
	evtimer_del(l->timer);
	event_active(l->timer, EV_TIMEOUT, 0);
}

static void dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct dns_lookup *l = arg;
	if (l->kept) {
		dns_deliver(l, l->kept_rcode, l->kept_packet, l->kept_len, l->kept_sec,
		            l->kept_why);
		return;
	}
	dns_lookup_leave_unbound(l);
	log_debug("event=dns-timeout name=%s type=%u", l->name, (unsigned)l->type);
	dns_deliver(l, -1, NULL, 0, 0, NULL);
}

/* Host names and the owner names of TLSA/TXT records (underscores): 1..253 octets, labels
 * of 1..63 printable octets, no backslash escapes. Copies it lower-cased without the dot. */
static char *dns_name_normalize(const char *name)
{
	size_t n = strlen(name);
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return NULL;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return NULL;
			label = 0;
		} else if (c <= 0x20 || c >= 0x7f || c == '\\' || ++label > 63) {
			return NULL;
		}
	}
	if (label == 0)
		return NULL;
	char *copy = xstrndup(name, n);
	for (size_t i = 0; i < n; i++)
		if (copy[i] >= 'A' && copy[i] <= 'Z')
			copy[i] = (char)(copy[i] - 'A' + 'a');
	return copy;
}

static void dns_lookup_link(struct dns_resolver *res, struct dns_lookup *l)
{
	l->next = res->lookups;
	if (res->lookups != NULL)
		res->lookups->prev = l;
	res->lookups = l;
	res->pending++;
}

struct dns_lookup *dns_lookup(struct dns_resolver *res, const char *name, uint16_t type,
                              dns_lookup_fn *callback, void *ctx, const char **error_r)
{
	if (type != DNS_TYPE_MX && type != DNS_TYPE_A && type != DNS_TYPE_AAAA &&
	    type != DNS_TYPE_TLSA && type != DNS_TYPE_TXT && type != DNS_TYPE_PTR) {
		*error_r = "unsupported record type";
		return NULL;
	}
	char *norm = dns_name_normalize(name);
	if (norm == NULL) {
		*error_r = "invalid domain name";
		return NULL;
	}
	struct dns_lookup *l = xcalloc(1, sizeof(*l));
	l->resolver = res;
	l->callback = callback;
	l->ctx = ctx;
	l->name = norm;
	l->type = type;
	l->timer = evtimer_new(res->base, dns_timer_cb, l);
	if (l->timer == NULL)
		log_fatal("libevent: cannot create a timer");
	dns_lookup_link(res, l);
	l->in_unbound = true;
	int r = ub_resolve_event(res->ub, l->name, type, DNS_CLASS_IN, l, dns_ub_callback,
	                         &l->async_id);
	if (r != 0) {
		l->in_unbound = false;
		if (r == UB_SYNTAX) {
			dns_lookup_unlink_free(l);
			*error_r = "invalid domain name";
			return NULL;
		}
		log_error("event=dns-error name=%s error=\"%s\"", l->name, ub_strerror(r));
		l->kept = true; /* a TEMPFAIL from the loop */
		l->kept_rcode = -2;
		l->fail_reason = ub_strerror(r);
		event_active(l->timer, EV_TIMEOUT, 0);
	}
	if (!l->kept) {
		struct timeval tv = {(time_t)res->timeout, 0};
		evtimer_add(l->timer, &tv);
	}
	return l;
}

void dns_lookup_cancel(struct dns_lookup **lookup)
{
	struct dns_lookup *l = *lookup;
	if (l == NULL)
		return;
	*lookup = NULL;
	dns_lookup_leave_unbound(l);
	dns_lookup_unlink_free(l);
}

struct dns_resolver *dns_loop_resolver(struct net_loop *loop, const struct conf *conf,
                                       const char **error_r)
{
	struct dns_resolver **slot = net_loop_dns_slot(loop);
	if (*slot == NULL)
		*slot = dns_resolver_new(loop, conf, error_r);
	return *slot;
}
