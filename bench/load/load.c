/* The run of posthorn-load (see load.h): one libevent loop that keeps up to `concurrency`
 * sessions open, each for the next user of the file, until every user had its session;
 * the optional barrier between logging in and the measured part; latency samples per
 * command and the report (text or one JSON object). */
#include "load.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/banned.h"

#define LOAD_MAX_ERRORS 10

struct load_samples {
	double *v;
	size_t n, cap;
};

struct load_waiter {
	void (*go)(void *ctx);
	void *ctx;
};

struct load_run {
	const struct load_options *opts;
	struct event_base *base;
	size_t next_user;
	size_t active;
	size_t ok, failed;
	uint64_t messages, octets, size_mismatch, commands;
	struct load_samples *samples; /* one per command of the mode */
	char *errors[LOAD_MAX_ERRORS];
	size_t error_count;
	struct load_waiter *waiters; /* sessions at the barrier (opts->barrier) */
	size_t waiting;
	bool released;
	double t_start, t_ready, t_go, t_end; /* start, all at the barrier, released, end */
};

double load_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *load_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (q == NULL) {
		fprintf(stderr, "posthorn-load: out of memory\n");
		exit(1);
	}
	return q;
}

void load_sample(struct load_run *run, unsigned cmd, double t0)
{
	if (cmd >= run->opts->mode->cmd_count)
		return;
	struct load_samples *s = &run->samples[cmd];
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 256 : 2 * s->cap;
		s->v = load_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = load_now() - t0;
}

void load_count_message(struct load_run *run, uint64_t octets)
{
	run->messages++;
	run->octets += octets;
}

void load_count_command(struct load_run *run)
{
	run->commands++;
}

void load_count_size_mismatch(struct load_run *run)
{
	run->size_mismatch++;
}

unsigned load_cycles(const struct load_run *run)
{
	return run->opts->cycles > 0 ? run->opts->cycles : 1;
}

unsigned load_timeout(const struct load_run *run)
{
	return run->opts->timeout_s;
}

static void load_start_next(struct load_run *run);
static void load_barrier_check(struct load_run *run);

void load_session_end(struct load_run *run, struct bufferevent *bev, const char *error, ...)
{
	bufferevent_free(bev);
	run->active--;
	run->t_end = load_now();
	if (error == NULL) {
		run->ok++;
	} else {
		run->failed++;
		char text[512];
		va_list ap;
		va_start(ap, error);
		vsnprintf(text, sizeof(text), error, ap);
		va_end(ap);
		if (run->error_count < LOAD_MAX_ERRORS) {
			run->errors[run->error_count++] = strdup(text);
			fprintf(stderr, "posthorn-load: session failed: %s\n", text);
		}
	}
	load_start_next(run);
	load_barrier_check(run);
	if (run->active == 0 && run->next_user >= run->opts->user_count)
		event_base_loopbreak(run->base);
}

/* ---- the barrier ---- */

void load_barrier_wait(struct load_run *run, void (*go)(void *ctx), void *ctx)
{
	if (!run->opts->barrier || run->released) {
		go(ctx);
		return;
	}
	run->waiters[run->waiting++] = (struct load_waiter){go, ctx};
	load_barrier_check(run);
}

void load_barrier_leave(struct load_run *run, void *ctx)
{
	for (size_t i = 0; i < run->waiting; i++) {
		if (run->waiters[i].ctx == ctx) {
			run->waiters[i] = run->waiters[--run->waiting];
			return;
		}
	}
}

/* Release the barrier once every session is waiting at it or has ended. */
static void load_barrier_check(struct load_run *run)
{
	const struct load_options *o = run->opts;
	if (!o->barrier || run->released || run->waiting + run->ok + run->failed < o->user_count)
		return;
	run->released = true;
	run->t_ready = load_now();
	if (o->go_stdin) {
		/* Every session is idle: blocking here holds up nothing. */
		printf("barrier %zu\n", run->waiting);
		fflush(stdout);
		char line[64];
		if (fgets(line, sizeof(line), stdin) == NULL)
			fprintf(stderr, "posthorn-load: stdin closed at the barrier: going on\n");
	}
	run->t_go = load_now();
	/* go() may end a session, which edits the array: take the waiters out first. */
	size_t n = run->waiting;
	struct load_waiter *w = malloc(n * sizeof(*w) + 1);
	if (w == NULL) {
		fprintf(stderr, "posthorn-load: out of memory\n");
		exit(1);
	}
	memcpy(w, run->waiters, n * sizeof(*w));
	run->waiting = 0;
	for (size_t i = 0; i < n; i++)
		w[i].go(w[i].ctx);
	free(w);
}

/* Open sessions until `concurrency` are active or no user is left. */
static void load_start_next(struct load_run *run)
{
	const struct load_options *o = run->opts;
	while (run->active < o->concurrency && run->next_user < o->user_count) {
		const struct load_user *u = &o->users[run->next_user++];
		struct bufferevent *bev =
		    bufferevent_socket_new(run->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			run->failed++;
			fprintf(stderr, "posthorn-load: cannot create a connection for %s\n",
			        u->name);
			continue;
		}
		run->active++;
		/* A refused connect is reported to the mode's event callback from the loop. */
		if (bufferevent_socket_connect(bev, (struct sockaddr *)&o->addr, (int)o->addr_len) <
		    0) {
			load_session_end(run, bev, "%s: connect: %s", u->name, strerror(errno));
			continue;
		}
		o->mode->start(run, bev, u);
	}
}

/* ---- statistics and the report ---- */

static int load_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) by linear interpolation between closest ranks (as
 * bench/smtp_latency.py); v sorted, n > 0. */
static double load_percentile(const double *v, size_t n, double p)
{
	double k = (double)(n - 1) * p / 100.0;
	size_t lo = (size_t)k;
	size_t hi = lo + 1 < n ? lo + 1 : n - 1;
	return v[lo] + (v[hi] - v[lo]) * (k - (double)lo);
}

struct load_summary {
	size_t n;
	double p50_ms, p99_ms, mean_ms, max_ms;
};

static struct load_summary load_summarize(struct load_samples *s)
{
	struct load_summary r = {.n = s->n};
	if (s->n == 0)
		return r;
	qsort(s->v, s->n, sizeof(*s->v), load_cmp_double);
	double sum = 0;
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i];
	r.p50_ms = load_percentile(s->v, s->n, 50) * 1000.0;
	r.p99_ms = load_percentile(s->v, s->n, 99) * 1000.0;
	r.mean_ms = sum / (double)s->n * 1000.0;
	r.max_ms = s->v[s->n - 1] * 1000.0;
	return r;
}

static void load_json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static double load_cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void load_report(struct load_run *run)
{
	const struct load_options *o = run->opts;
	const struct load_mode *m = o->mode;
	double secs = run->t_end - run->t_start;
	/* With the barrier the rates are of the part after it; without, of the whole run. */
	double login = o->barrier ? run->t_ready - run->t_start : 0;
	double measured = o->barrier ? run->t_end - run->t_go : secs;
	double rate = measured > 0 ? (double)run->messages / measured : 0;
	double mbps = measured > 0 ? (double)run->octets / 1e6 / measured : 0;
	double cmd_rate = measured > 0 ? (double)run->commands / measured : 0;
	double cpu = load_cpu_seconds();
	if (o->json) {
		printf(
		    "{\"mode\":\"%s\",\"target\":\"%s\",\"sessions\":%zu,\"concurrency\":%u,"
		    "\"barrier\":%s,\"sessions_ok\":%zu,\"sessions_failed\":%zu,\"messages\":%llu,"
		    "\"octets\":%llu,\"size_mismatch\":%llu,\"seconds\":%.6f,"
		    "\"login_seconds\":%.6f,\"measured_seconds\":%.6f,"
		    "\"messages_per_s\":%.3f,\"mb_per_s\":%.3f,\"commands\":%llu,"
		    "\"commands_per_s\":%.3f,\"load_cpu_s\":%.3f,\"latency_ms\":"
		    "{",
		    m->name, o->target, o->user_count, o->concurrency,
		    o->barrier ? "true" : "false", run->ok, run->failed,
		    (unsigned long long)run->messages, (unsigned long long)run->octets,
		    (unsigned long long)run->size_mismatch, secs, login, measured, rate, mbps,
		    (unsigned long long)run->commands, cmd_rate, cpu);
		for (unsigned i = 0; i < m->cmd_count; i++) {
			struct load_summary s = load_summarize(&run->samples[i]);
			printf("%s\"%s\":{\"n\":%zu,\"p50\":%.4f,\"p99\":%.4f,\"mean\":%.4f,"
			       "\"max\":%.4f}",
			       i > 0 ? "," : "", m->cmd_names[i], s.n, s.p50_ms, s.p99_ms,
			       s.mean_ms, s.max_ms);
		}
		printf("},\"errors\":[");
		for (size_t i = 0; i < run->error_count; i++) {
			if (i > 0)
				putchar(',');
			load_json_string(run->errors[i]);
		}
		printf("]}\n");
		return;
	}
	printf("posthorn-load %s %s: %zu sessions, concurrency %u\n", m->name, o->target,
	       o->user_count, o->concurrency);
	printf("sessions ok=%zu failed=%zu\n", run->ok, run->failed);
	printf("messages=%llu octets=%llu size_mismatch=%llu\n", (unsigned long long)run->messages,
	       (unsigned long long)run->octets, (unsigned long long)run->size_mismatch);
	if (o->barrier)
		printf("seconds=%.3f (logging in %.3f, after the barrier %.3f)\n", secs, login,
		       measured);
	else
		printf("seconds=%.3f\n", secs);
	printf("messages_per_s=%.1f mb_per_s=%.2f%s load_cpu_s=%.3f\n", rate, mbps,
	       o->barrier ? " (after the barrier)" : "", cpu);
	if (run->commands > 0)
		printf("commands=%llu commands_per_s=%.1f%s\n", (unsigned long long)run->commands,
		       cmd_rate, o->barrier ? " (after the barrier)" : "");
	for (unsigned i = 0; i < m->cmd_count; i++) {
		struct load_summary s = load_summarize(&run->samples[i]);
		if (s.n == 0)
			continue;
		printf("latency_ms cmd=%s n=%zu p50=%.3f p99=%.3f mean=%.3f max=%.3f\n",
		       m->cmd_names[i], s.n, s.p50_ms, s.p99_ms, s.mean_ms, s.max_ms);
	}
}

int load_run(const struct load_options *opts)
{
	struct load_run run = {.opts = opts};
	run.base = event_base_new();
	if (run.base == NULL) {
		fprintf(stderr, "posthorn-load: event_base_new failed\n");
		return -1;
	}
	run.samples = calloc(opts->mode->cmd_count, sizeof(*run.samples));
	run.waiters = calloc(opts->user_count, sizeof(*run.waiters));
	if (run.samples == NULL || run.waiters == NULL) {
		free(run.samples);
		free(run.waiters);
		event_base_free(run.base);
		return -1;
	}
	run.t_start = run.t_end = run.t_ready = run.t_go = load_now();
	load_start_next(&run);
	if (run.active > 0)
		event_base_dispatch(run.base);
	load_report(&run);
	int ret = run.failed == 0 && run.size_mismatch == 0 && run.ok == opts->user_count ? 0 : 1;
	for (unsigned i = 0; i < opts->mode->cmd_count; i++)
		free(run.samples[i].v);
	free(run.samples);
	free(run.waiters);
	for (size_t i = 0; i < run.error_count; i++)
		free(run.errors[i]);
	event_base_free(run.base);
	return ret;
}
