/* Loop events that are not connections (see net_event.h): one libevent event used both as
 * a cross-thread wake-up (event_active, safe with evthread_use_pthreads) and as a timer. */
#include "net/net_event.h"

#include <stdlib.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "net/net_private.h"
#include "core/banned.h"

struct net_event {
	struct event *ev;
	net_event_fn *fn;
	void *ctx;
};

static void net_event_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct net_event *e = arg;
	e->fn(e->ctx);
}

struct net_event *net_event_new(struct net_loop *loop, net_event_fn *fn, void *ctx)
{
	struct net_event *e = xcalloc(1, sizeof(*e));
	e->fn = fn;
	e->ctx = ctx;
	e->ev = event_new(net_loop_base(loop), -1, 0, net_event_cb, e);
	if (e->ev == NULL)
		log_fatal("libevent: cannot create an event");
	return e;
}

void net_event_free(struct net_event **ev)
{
	if (*ev == NULL)
		return;
	event_free((*ev)->ev);
	free(*ev);
	*ev = NULL;
}

void net_event_wake(struct net_event *ev)
{
	event_active(ev->ev, EV_READ, 0);
}

void net_event_schedule(struct net_event *ev, unsigned ms)
{
	struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
	event_add(ev->ev, &tv);
}
