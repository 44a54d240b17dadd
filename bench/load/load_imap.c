/* posthorn-load's IMAP modes (RFC 9051/3501). imap-mixed: per user LOGIN, SELECT INBOX, then
 * (after the barrier) FETCH of every message's flags, size and three header fields, FETCH
 * BODY.PEEK[] of a few messages, STORE +FLAGS (\Seen), UID SEARCH UNSEEN, APPEND of a message
 * (synchronizing literal), STORE +FLAGS (\Deleted) on it, EXPUNGE, LOGOUT; every command must
 * end with a tagged OK; --cycles N repeats FETCH ... EXPUNGE N times. imap-idle: LOGIN,
 * SELECT INBOX, IDLE held open until the barrier is released (the driver measures the
 * server's memory meanwhile), then DONE and LOGOUT. */
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

#define IMAP_LINE_MAX 65536
#define IMAP_BODY_FETCHES 3 /* messages fetched whole per session */

enum load_imap_cmd {
	IMAP_CMD_GREETING,
	IMAP_CMD_LOGIN,
	IMAP_CMD_SELECT,
	IMAP_CMD_FETCH_HDR,
	IMAP_CMD_FETCH_BODY,
	IMAP_CMD_STORE_SEEN,
	IMAP_CMD_SEARCH,
	IMAP_CMD_APPEND,
	IMAP_CMD_STORE_DEL,
	IMAP_CMD_EXPUNGE,
	IMAP_CMD_IDLE,
	IMAP_CMD_DONE,
	IMAP_CMD_LOGOUT,
	IMAP_CMD_COUNT
};

static const char *const load_imap_cmd_names[IMAP_CMD_COUNT] = {
    "greeting",   "LOGIN",      "SELECT", "FETCH_HEADERS", "FETCH_BODY",
    "STORE_SEEN", "UID_SEARCH", "APPEND", "STORE_DELETED", "EXPUNGE",
    "IDLE",       "DONE",       "LOGOUT",
};

/* The message every session appends (CRLF lines). */
static const char load_imap_append_msg[] =
    "From: <load@load.test>\r\n"
    "To: <user@bench.test>\r\n"
    "Subject: imap bench append\r\n"
    "Date: Mon, 06 Jan 2025 10:00:00 +0000\r\n"
    "Message-ID: <imap-append@load.test>\r\n"
    "\r\n"
    "A message appended by posthorn-load. It is flagged \\Deleted and expunged again\r\n"
    "before the session logs out, so the mailbox keeps its size from round to round.\r\n"
    "0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789\r\n"
    "0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789\r\n";

struct load_imap {
	struct load_run *run;
	struct bufferevent *bev;
	const struct load_user *user;
	bool idle_mode;
	enum load_imap_cmd cmd; /* the command being answered */
	bool at_barrier;
	bool measured;  /* past the barrier: count commands */
	unsigned cycle; /* repetitions of the measured part done */
	unsigned tagno;
	char tag[16];
	double t0;
	uint32_t exists;
	uint32_t body_next;    /* next message to fetch whole, 1-based */
	uint64_t literal_left; /* octets of a literal still to come */
	uint64_t literal_size;
	bool literal_is_body; /* the literal is a BODY[] of FETCH_BODY */
	bool bodies_seen;     /* FETCH_BODY returned its literal */
	bool cont_line;       /* the next line continues a response after a literal */
};

static void load_imap_end(struct load_imap *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* End the session (fmt == NULL: success) and free it. */
static void load_imap_end(struct load_imap *p, const char *fmt, ...)
{
	struct load_run *run = p->run;
	struct bufferevent *bev = p->bev;
	if (p->at_barrier)
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

static void load_imap_send(struct load_imap *p, enum load_imap_cmd cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Send "TAG command" with a new tag; the answer is that of cmd. */
static void load_imap_send(struct load_imap *p, enum load_imap_cmd cmd, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(p->bev);
	snprintf(p->tag, sizeof(p->tag), "a%u", ++p->tagno);
	evbuffer_add_printf(out, "%s ", p->tag);
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	p->cmd = cmd;
	p->t0 = load_now();
}

/* Append s as an IMAP quoted string. */
static void load_imap_quoted(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, "\"", 1);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			evbuffer_add(out, "\\", 1);
		evbuffer_add(out, s, 1);
	}
	evbuffer_add(out, "\"", 1);
}

static void load_imap_send_login(struct load_imap *p)
{
	struct evbuffer *out = bufferevent_get_output(p->bev);
	snprintf(p->tag, sizeof(p->tag), "a%u", ++p->tagno);
	evbuffer_add_printf(out, "%s LOGIN ", p->tag);
	load_imap_quoted(out, p->user->name);
	evbuffer_add(out, " ", 1);
	load_imap_quoted(out, p->user->password);
	evbuffer_add(out, "\r\n", 2);
	p->cmd = IMAP_CMD_LOGIN;
	p->t0 = load_now();
}

/* The next whole-body FETCH, or STORE when done. */
static void load_imap_next_body(struct load_imap *p)
{
	if (p->body_next >= 1 && p->body_next <= p->exists && p->body_next <= IMAP_BODY_FETCHES) {
		p->bodies_seen = false;
		load_imap_send(p, IMAP_CMD_FETCH_BODY, "FETCH %u BODY.PEEK[]", p->body_next);
		return;
	}
	uint32_t last = p->exists < IMAP_BODY_FETCHES ? p->exists : IMAP_BODY_FETCHES;
	if (last == 0)
		load_imap_send(p, IMAP_CMD_SEARCH, "UID SEARCH UNSEEN");
	else
		load_imap_send(p, IMAP_CMD_STORE_SEEN, "STORE 1:%u +FLAGS (\\Seen)", last);
}

/* Past the barrier (or there was none): the measured part. */
static void load_imap_go(void *ctx)
{
	struct load_imap *p = ctx;
	p->at_barrier = false;
	p->measured = true;
	struct timeval tv = {(time_t)load_timeout(p->run), 0};
	bufferevent_set_timeouts(p->bev, &tv, NULL);
	if (p->idle_mode) {
		struct evbuffer *out = bufferevent_get_output(p->bev);
		evbuffer_add(out, "DONE\r\n", 6);
		p->cmd = IMAP_CMD_DONE;
		p->t0 = load_now();
		return;
	}
	if (p->exists == 0) {
		load_imap_next_body(p);
		return;
	}
	load_imap_send(
	    p, IMAP_CMD_FETCH_HDR,
	    "FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (From Subject Date)])");
}

/* Wait at the barrier (no input due meanwhile: no inactivity timeout). */
static void load_imap_barrier(struct load_imap *p)
{
	p->at_barrier = true;
	bufferevent_set_timeouts(p->bev, NULL, NULL);
	load_barrier_wait(p->run, load_imap_go, p);
}

/* A tagged OK for the current command: go on. Returns false when the session ended. */
static bool load_imap_ok(struct load_imap *p)
{
	load_sample(p->run, p->cmd, p->t0);
	if (p->measured)
		load_count_command(p->run);
	switch (p->cmd) {
	case IMAP_CMD_LOGIN:
		load_imap_send(p, IMAP_CMD_SELECT, "SELECT INBOX");
		break;
	case IMAP_CMD_SELECT:
		if (p->idle_mode)
			load_imap_send(p, IMAP_CMD_IDLE, "IDLE");
		else
			load_imap_barrier(p);
		break;
	case IMAP_CMD_FETCH_HDR:
		p->body_next = 1;
		load_imap_next_body(p);
		break;
	case IMAP_CMD_FETCH_BODY:
		if (!p->bodies_seen) {
			load_imap_end(p, "FETCH %u BODY.PEEK[] returned no body", p->body_next);
			return false;
		}
		p->body_next++;
		load_imap_next_body(p);
		break;
	case IMAP_CMD_STORE_SEEN:
		load_imap_send(p, IMAP_CMD_SEARCH, "UID SEARCH UNSEEN");
		break;
	case IMAP_CMD_SEARCH:
		load_imap_send(p, IMAP_CMD_APPEND, "APPEND INBOX (\\Seen) {%zu}",
		               sizeof(load_imap_append_msg) - 1);
		break;
	case IMAP_CMD_APPEND:
		/* The appended message is the newest: '*'. */
		load_imap_send(p, IMAP_CMD_STORE_DEL, "STORE * +FLAGS.SILENT (\\Deleted)");
		break;
	case IMAP_CMD_STORE_DEL:
		load_imap_send(p, IMAP_CMD_EXPUNGE, "EXPUNGE");
		break;
	case IMAP_CMD_EXPUNGE:
		if (++p->cycle < load_cycles(p->run)) {
			load_imap_go(p);
			break;
		}
		load_imap_send(p, IMAP_CMD_LOGOUT, "LOGOUT");
		break;
	case IMAP_CMD_DONE:
		load_imap_send(p, IMAP_CMD_LOGOUT, "LOGOUT");
		break;
	case IMAP_CMD_LOGOUT:
		load_imap_end(p, NULL);
		return false;
	default:
		load_imap_end(p, "tagged answer to %s", load_imap_cmd_names[p->cmd]);
		return false;
	}
	return true;
}

/* "... {N}" at the end of line: N (-1 when none). */
static long long load_imap_literal(const char *line, size_t len)
{
	if (len < 3 || line[len - 1] != '}')
		return -1;
	size_t i = len - 1;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == 0 || line[i - 1] != '{' || i == len - 1)
		return -1;
	return strtoll(line + i, NULL, 10);
}

/* One line of the server's. Returns false when the session ended. */
static bool load_imap_line(struct load_imap *p, const char *line, size_t len)
{
	long long lit = load_imap_literal(line, len);
	bool cont = p->cont_line;
	p->cont_line = false;
	if (lit >= 0) {
		p->literal_left = p->literal_size = (uint64_t)lit;
		p->literal_is_body =
		    p->cmd == IMAP_CMD_FETCH_BODY && !cont && strstr(line, "BODY[]") != NULL;
		if (lit == 0)
			p->cont_line = true;
	}
	if (cont)
		return true;
	if (p->cmd == IMAP_CMD_GREETING) {
		if (strncmp(line, "* OK", 4) != 0) {
			load_imap_end(p, "greeting: %.200s", line);
			return false;
		}
		load_sample(p->run, IMAP_CMD_GREETING, p->t0);
		load_imap_send_login(p);
		return true;
	}
	if (line[0] == '*') {
		unsigned long n;
		char word[16];
		if (sscanf(line, "* %lu %15s", &n, word) == 2 && strcmp(word, "EXISTS") == 0)
			p->exists = (uint32_t)n;
		else if (sscanf(line, "* %lu %15s", &n, word) == 2 &&
		         strcmp(word, "EXPUNGE") == 0 && p->exists > 0)
			p->exists--;
		return true;
	}
	if (line[0] == '+') {
		if (p->cmd == IMAP_CMD_APPEND) {
			struct evbuffer *out = bufferevent_get_output(p->bev);
			evbuffer_add(out, load_imap_append_msg, sizeof(load_imap_append_msg) - 1);
			evbuffer_add(out, "\r\n", 2);
			return true;
		}
		if (p->cmd == IMAP_CMD_IDLE) {
			load_sample(p->run, IMAP_CMD_IDLE, p->t0);
			load_imap_barrier(p);
			return true;
		}
		load_imap_end(p, "unexpected continuation to %s: %.200s",
		              load_imap_cmd_names[p->cmd], line);
		return false;
	}
	size_t tl = strlen(p->tag);
	if (strncmp(line, p->tag, tl) == 0 && line[tl] == ' ') {
		if (strncmp(line + tl + 1, "OK", 2) != 0) {
			load_imap_end(p, "%s answered: %.200s", load_imap_cmd_names[p->cmd], line);
			return false;
		}
		return load_imap_ok(p);
	}
	load_imap_end(p, "unexpected line after %s: %.200s", load_imap_cmd_names[p->cmd], line);
	return false;
}

static void load_imap_read_cb(struct bufferevent *bev, void *arg)
{
	struct load_imap *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		if (p->literal_left > 0) {
			size_t have = evbuffer_get_length(in);
			if (have == 0)
				return;
			size_t n = have < p->literal_left ? have : (size_t)p->literal_left;
			evbuffer_drain(in, n);
			p->literal_left -= n;
			if (p->literal_left > 0)
				return;
			if (p->literal_is_body) {
				load_count_message(p->run, p->literal_size);
				p->bodies_seen = true;
			}
			p->cont_line = true;
			continue;
		}
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
		if (line == NULL) {
			if (evbuffer_get_length(in) > IMAP_LINE_MAX)
				load_imap_end(p, "%s: line longer than %d octets",
				              load_imap_cmd_names[p->cmd], IMAP_LINE_MAX);
			return;
		}
		bool more = load_imap_line(p, line, len);
		free(line);
		if (!more)
			return;
	}
}

static void load_imap_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct load_imap *p = arg;
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
	load_imap_end(p, "connection %s waiting for %s", how, load_imap_cmd_names[p->cmd]);
}

static void load_imap_start(struct load_run *run, struct bufferevent *bev,
                            const struct load_user *user, bool idle_mode)
{
	struct load_imap *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		load_session_end(run, bev, "%s: out of memory", user->name);
		return;
	}
	p->run = run;
	p->bev = bev;
	p->user = user;
	p->idle_mode = idle_mode;
	p->cmd = IMAP_CMD_GREETING;
	p->t0 = load_now();
	struct timeval tv = {(time_t)load_timeout(run), 0};
	bufferevent_set_timeouts(bev, &tv, NULL);
	bufferevent_setcb(bev, load_imap_read_cb, NULL, load_imap_event_cb, p);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void load_imap_start_mixed(struct load_run *run, struct bufferevent *bev,
                                  const struct load_user *user)
{
	load_imap_start(run, bev, user, false);
}

static void load_imap_start_idle(struct load_run *run, struct bufferevent *bev,
                                 const struct load_user *user)
{
	load_imap_start(run, bev, user, true);
}

const struct load_mode load_imap_mixed_mode = {
    .name = "imap-mixed",
    .cmd_names = load_imap_cmd_names,
    .cmd_count = IMAP_CMD_COUNT,
    .start = load_imap_start_mixed,
};

const struct load_mode load_imap_idle_mode = {
    .name = "imap-idle",
    .cmd_names = load_imap_cmd_names,
    .cmd_count = IMAP_CMD_COUNT,
    .start = load_imap_start_idle,
};
