/* The daily report schedule of the outbound engine, shared by TLS-RPT (outbound_tlsrpt.c)
 * and DMARC aggregate reports (outbound_dmarc.c): once a UTC day, a few random minutes
 * after midnight (at start-up at once), the previous day is claimed in the store (one node,
 * one process, once); the claim's completion says whether this process sends that day. */
#include "smtp/outbound_private.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "smtp/tlsrpt.h"
#include "core/banned.h"

void outbound_daily_init(struct ob_daily *d)
{
	*d = (struct ob_daily){.delay = -1};
}

void outbound_daily_from(const struct conf *conf, const char *contact, char *out, size_t n)
{
	if (contact[0] != '\0')
		snprintf(out, n, "%s", contact);
	else
		snprintf(out, n, "postmaster@%s", conf->hostname);
}

void outbound_daily_report_id(const struct conf *conf, int64_t day, const char *domain, char *out,
                              size_t n)
{
	char d[11];
	tlsrpt_day_text(day, d);
	snprintf(out, n, "%s.%s@%s", d, domain, conf->hostname);
}

struct ob_op *outbound_daily_tick(struct ob_daily *d, enum store_queue_action action)
{
	int64_t now = (int64_t)time(NULL);
	int64_t today = now / 86400;
	if (d->claiming || d->day == today)
		return NULL;
	/* Shortly after midnight: a few random minutes in, so that the nodes of a cluster
	 * and the servers of the world do not all send at once. At start-up: at once (the
	 * previous day is reported if nobody did). */
	if (d->day != 0) {
		if (d->delay < 0) {
			uint32_t r = 0;
			if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
				r = 0;
			d->delay = (int64_t)(r % 600);
		}
		if (now - today * 86400 < d->delay)
			return NULL;
	}
	d->day = today;
	d->delay = -1;
	d->claiming = true;
	struct ob_op *o = xcalloc(1, sizeof(*o));
	o->op.action = action;
	o->op.id = (uint64_t)(today - 1);
	return o;
}

struct conf *outbound_daily_claimed(struct outbound *ob, struct ob_daily *d,
                                    const struct ob_daily_kind *kind, const struct ob_op *o,
                                    bool busy)
{
	d->claiming = false;
	if (o->op.result < 0) {
		log_error("event=%s result=failed error=\"%s\"", kind->event, o->op.error);
		d->day = 0; /* try again at the next tick */
		return NULL;
	}
	struct conf *conf = conf_slot_get(ob->slot);
	bool send = kind->send(conf);
	char day[11];
	tlsrpt_day_text((int64_t)o->op.id, day);
	if (o->op.changed == 0 || !send || busy || outbound_stopping(ob)) {
		if (o->op.changed == 0)
			log_info("event=%s day=%s result=claimed-before", kind->event, day);
		else if (!send)
			log_info("event=%s day=%s result=not-sent (%s = no)", kind->event, day,
			         kind->setting);
		else
			log_info("event=%s day=%s result=busy", kind->event, day);
		conf_free(&conf);
		return NULL;
	}
	log_info("event=%s day=%s result=sending", kind->event, day);
	return conf;
}
