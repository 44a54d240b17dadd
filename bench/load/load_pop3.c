/* posthorn-load's POP3 mode (RFC 1939): per user, greeting, USER/PASS, STAT, then RETR n and
 * DELE n for every message, QUIT. Each RETR response must be a complete multi-line response
 * (CRLF line ends, terminated by CRLF.CRLF); its octets are counted after dot-unstuffing and
 * compared with the size in "+OK N octets" when the server announces one. One command at a
 * time per session (no pipelining), so each latency is that of one command. */
#include "load.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "core/banned.h"

#define POP3_STATUS_MAX 4096

enum load_pop3_cmd {
	POP3_CMD_GREETING,
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_STAT,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_QUIT,
	POP3_CMD_COUNT
};

static const char *const load_pop3_cmd_names[POP3_CMD_COUNT] = {
    "greeting", "USER", "PASS", "STAT", "RETR", "DELE", "QUIT",
};

/* What the session waits for. */
enum load_pop3_step {
	POP3_WAIT_GREETING,
	POP3_WAIT_USER,
	POP3_WAIT_PASS,
	POP3_WAIT_STAT,
	POP3_AT_BARRIER,
	POP3_WAIT_RETR_STATUS,
	POP3_WAIT_RETR_BODY,
	POP3_WAIT_DELE,
	POP3_WAIT_QUIT,
};

static const char *const load_pop3_step_names[] = {
    "greeting", "USER", "PASS", "STAT", "the barrier", "RETR", "RETR body", "DELE", "QUIT",
};

/* Where the scanner of a multi-line response is within a line. */
enum load_pop3_scan {
	POP3_SCAN_BOL,    /* at the start of a line */
	POP3_SCAN_DOT,    /* after a '.' that started a line */
	POP3_SCAN_DOT_CR, /* after ".\r" at the start of a line */
	POP3_SCAN_MID,    /* inside a line */
};

struct load_pop3 {
	struct load_run *run;
	struct bufferevent *bev;
	const struct load_user *user;
	enum load_pop3_step step;
	uint32_t count; /* messages STAT reported */
	uint32_t cur;   /* message being retrieved or deleted, 1-based */
	double t0;      /* when the command being answered was sent */
	enum load_pop3_scan scan;
	bool prev_cr; /* the last octet scanned inside a line was CR */
	uint64_t octets;
	uint64_t announced;
	bool has_announced;
};

static void load_pop3_end(struct load_pop3 *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* End the session (fmt == NULL: success) and free it. */
static void load_pop3_end(struct load_pop3 *p, const char *fmt, ...)
{
	struct load_run *run = p->run;
	struct bufferevent *bev = p->bev;
	if (p->step == POP3_AT_BARRIER)
		load_barrier_leave(run, p);
	if (fmt == NULL) {
		free(p);
		load_session_end(run, bev, NULL);
		return;
	}
	char text[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	char user[128];
	snprintf(user, sizeof(user), "%s", p->user->name);
	free(p);
	load_session_end(run, bev, "%s: %s", user, text);
}

static void load_pop3_send(struct load_pop3 *p, enum load_pop3_step next, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void load_pop3_send(struct load_pop3 *p, enum load_pop3_step next, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(p->bev);
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	p->step = next;
	p->t0 = load_now();
}

/* Scan n octets of a multi-line response body. Returns 1 when the terminating ".\r\n" line
 * ended within them (*used_r = octets up to and including it), 0 when more are needed
 * (*used_r = n), -1 on a line that does not end with CRLF. */
static int load_pop3_scan(struct load_pop3 *p, const unsigned char *d, size_t n, size_t *used_r)
{
	size_t i = 0;
	while (i < n) {
		switch (p->scan) {
		case POP3_SCAN_BOL:
			p->prev_cr = false;
			if (d[i] == '.') {
				p->scan = POP3_SCAN_DOT;
				i++;
			} else {
				p->scan = POP3_SCAN_MID;
			}
			break;
		case POP3_SCAN_DOT:
			if (d[i] == '\r') {
				p->scan = POP3_SCAN_DOT_CR;
				i++;
			} else {
				p->scan =
				    POP3_SCAN_MID; /* a stuffed dot: not part of the message */
			}
			break;
		case POP3_SCAN_DOT_CR:
			if (d[i] != '\n')
				return -1;
			*used_r = i + 1;
			return 1;
		case POP3_SCAN_MID: {
			const unsigned char *nl = memchr(d + i, '\n', n - i);
			if (nl == NULL) {
				p->octets += n - i;
				p->prev_cr = d[n - 1] == '\r';
				i = n;
				break;
			}
			size_t j = (size_t)(nl - d);
			bool cr = j > i ? d[j - 1] == '\r' : p->prev_cr;
			if (!cr)
				return -1;
			p->octets += j - i + 1;
			p->scan = POP3_SCAN_BOL;
			i = j + 1;
			break;
		}
		}
	}
	*used_r = n;
	return 0;
}

/* Scan what has arrived of a RETR body; 1 complete, 0 need more, -1 malformed. */
static int load_pop3_scan_input(struct load_pop3 *p, struct evbuffer *in)
{
	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v[8];
		int nv = evbuffer_peek(in, -1, NULL, v, 8);
		if (nv <= 0)
			return 0;
		if (nv > 8)
			nv = 8;
		size_t total = 0;
		int r = 0;
		for (int k = 0; k < nv && r == 0; k++) {
			size_t used = 0;
			r = load_pop3_scan(p, v[k].iov_base, v[k].iov_len, &used);
			total += used;
		}
		if (r < 0)
			return -1;
		evbuffer_drain(in, total);
		if (r > 0)
			return 1;
	}
	return 0;
}

/* A RETR response is complete: count it, then DELE the message. */
static void load_pop3_retr_done(struct load_pop3 *p)
{
	load_sample(p->run, POP3_CMD_RETR, p->t0);
	load_count_message(p->run, p->octets);
	if (p->has_announced && p->announced != p->octets) {
		load_count_size_mismatch(p->run);
		fprintf(stderr, "posthorn-load: %s message %u: %llu octets, announced %llu\n",
		        p->user->name, p->cur, (unsigned long long)p->octets,
		        (unsigned long long)p->announced);
	}
	load_pop3_send(p, POP3_WAIT_DELE, "DELE %u", p->cur);
}

static void load_pop3_next_retr(struct load_pop3 *p)
{
	if (p->cur > p->count) {
		load_pop3_send(p, POP3_WAIT_QUIT, "QUIT");
		return;
	}
	load_pop3_send(p, POP3_WAIT_RETR_STATUS, "RETR %u", p->cur);
}

/* Past the barrier (or there was none): download. */
static void load_pop3_go(void *ctx)
{
	struct load_pop3 *p = ctx;
	struct timeval tv = {(time_t)load_timeout(p->run), 0};
	bufferevent_set_timeouts(p->bev, &tv, NULL);
	load_pop3_next_retr(p);
}

/* "+OK N ..." -> N; false when no number follows. */
static bool load_pop3_number(const char *line, unsigned long long *n_r)
{
	const char *s = line + 3;
	while (*s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	char *end;
	*n_r = strtoull(s, &end, 10);
	return *end == '\0' || *end == ' ';
}

/* One status line for the step we are in. Returns true to go on reading, false when the
 * session ended (p is freed). */
static bool load_pop3_status(struct load_pop3 *p, const char *line)
{
	if (strncmp(line, "+OK", 3) != 0 || (line[3] != '\0' && line[3] != ' ')) {
		if (p->step == POP3_WAIT_RETR_STATUS || p->step == POP3_WAIT_DELE)
			load_pop3_end(p, "%s %u answered: %.200s", load_pop3_step_names[p->step],
			              p->cur, line);
		else
			load_pop3_end(p, "%s answered: %.200s", load_pop3_step_names[p->step],
			              line);
		return false;
	}
	unsigned long long n = 0;
	switch (p->step) {
	case POP3_WAIT_GREETING:
		load_sample(p->run, POP3_CMD_GREETING, p->t0);
		load_pop3_send(p, POP3_WAIT_USER, "USER %s", p->user->name);
		break;
	case POP3_WAIT_USER:
		load_sample(p->run, POP3_CMD_USER, p->t0);
		load_pop3_send(p, POP3_WAIT_PASS, "PASS %s", p->user->password);
		break;
	case POP3_WAIT_PASS:
		load_sample(p->run, POP3_CMD_PASS, p->t0);
		load_pop3_send(p, POP3_WAIT_STAT, "STAT");
		break;
	case POP3_WAIT_STAT:
		if (!load_pop3_number(line, &n) || n > UINT32_MAX) {
			load_pop3_end(p, "malformed STAT answer: %.200s", line);
			return false;
		}
		load_sample(p->run, POP3_CMD_STAT, p->t0);
		p->count = (uint32_t)n;
		p->cur = 1;
		/* No input is due while waiting for the others: no inactivity timeout. */
		p->step = POP3_AT_BARRIER;
		bufferevent_set_timeouts(p->bev, NULL, NULL);
		load_barrier_wait(p->run, load_pop3_go, p);
		break;
	case POP3_WAIT_RETR_STATUS:
		p->has_announced = load_pop3_number(line, &n);
		p->announced = n;
		p->octets = 0;
		p->scan = POP3_SCAN_BOL;
		p->prev_cr = false;
		p->step = POP3_WAIT_RETR_BODY;
		break;
	case POP3_WAIT_DELE:
		load_sample(p->run, POP3_CMD_DELE, p->t0);
		p->cur++;
		load_pop3_next_retr(p);
		break;
	case POP3_WAIT_QUIT:
		load_sample(p->run, POP3_CMD_QUIT, p->t0);
		load_pop3_end(p, NULL);
		return false;
	case POP3_AT_BARRIER:
		load_pop3_end(p, "unexpected line at the barrier: %.200s", line);
		return false;
	case POP3_WAIT_RETR_BODY:
		break; /* not reached: bodies are scanned, not read as lines */
	}
	return true;
}

static void load_pop3_read_cb(struct bufferevent *bev, void *arg)
{
	struct load_pop3 *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		if (p->step == POP3_WAIT_RETR_BODY) {
			int r = load_pop3_scan_input(p, in);
			if (r < 0) {
				load_pop3_end(p,
				              "RETR %u: a line of the response does not end "
				              "with CRLF",
				              p->cur);
				return;
			}
			if (r == 0)
				return;
			load_pop3_retr_done(p);
			continue;
		}
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
		if (line == NULL) {
			if (evbuffer_get_length(in) > POP3_STATUS_MAX)
				load_pop3_end(p, "%s: status line longer than %d octets",
				              load_pop3_step_names[p->step], POP3_STATUS_MAX);
			return;
		}
		bool more = load_pop3_status(p, line);
		free(line);
		if (!more)
			return;
	}
}

static void load_pop3_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct load_pop3 *p = arg;
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return;
	}
	char how[160];
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(how, sizeof(how), "timed out (%u s)", load_timeout(p->run));
	else if (what & BEV_EVENT_EOF)
		snprintf(how, sizeof(how), "closed by the server");
	else
		snprintf(how, sizeof(how), "failed (%s)",
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (p->step == POP3_WAIT_RETR_BODY || p->step == POP3_WAIT_RETR_STATUS ||
	    p->step == POP3_WAIT_DELE)
		load_pop3_end(p, "connection %s waiting for %s of message %u of %u", how,
		              load_pop3_step_names[p->step], p->cur, p->count);
	else
		load_pop3_end(p, "connection %s waiting for %s", how,
		              load_pop3_step_names[p->step]);
}

static void load_pop3_start(struct load_run *run, struct bufferevent *bev,
                            const struct load_user *user)
{
	struct load_pop3 *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		load_session_end(run, bev, "%s: out of memory", user->name);
		return;
	}
	p->run = run;
	p->bev = bev;
	p->user = user;
	p->step = POP3_WAIT_GREETING;
	p->t0 = load_now();
	struct timeval tv = {(time_t)load_timeout(run), 0};
	bufferevent_set_timeouts(bev, &tv, NULL);
	bufferevent_setcb(bev, load_pop3_read_cb, NULL, load_pop3_event_cb, p);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

const struct load_mode load_pop3_mode = {
    .name = "pop3",
    .cmd_names = load_pop3_cmd_names,
    .cmd_count = POP3_CMD_COUNT,
    .start = load_pop3_start,
};
