/* Loop events for work that is not a connection: a wake-up that any thread may trigger
 * (a store completion handing its result to the loop), and a timer. Both run their
 * function on the loop's thread. Used by the outbound delivery engine. */
#ifndef POSTHORN_NET_NET_EVENT_H
#define POSTHORN_NET_NET_EVENT_H

struct net_loop;
struct net_event;

typedef void net_event_fn(void *ctx);

/* An event on loop that calls fn(ctx) on the loop's thread when woken or when its timer
 * expires. Create and free it on the loop's thread (or before the loop runs). */
struct net_event *net_event_new(struct net_loop *loop, net_event_fn *fn, void *ctx);
/* Free it (a pending call is dropped); sets *ev to NULL; accepts NULL. */
void net_event_free(struct net_event **ev);
/* From any thread: call fn soon on the loop (several wakes before it runs: one call). */
void net_event_wake(struct net_event *ev);
/* On the loop's thread: call fn after ms milliseconds (replaces an earlier timer;
 * 0 = at the next loop turn). */
void net_event_schedule(struct net_event *ev, unsigned ms);

#endif
