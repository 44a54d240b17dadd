/* The engine fixture shared by the unit tests that run on both SQL engines (test_sql.c and
 * the store's test_store*.c): every test runs on SQLite and, when POSTHORN_TEST_PGURL names
 * a PostgreSQL database, on PostgreSQL too, in a schema of its own that is dropped at the
 * end (without the variable the PostgreSQL runs skip). Header-only: each test program
 * includes it once, after cmocka.h.
 *
 * A test program defines setup() and teardown(); setup() reads the engine from *state
 * (engine_kind(state)) and calls engine_start(), which tells whether the test skips. The
 * tests are listed with ON(sqlite, f), ON(pg, f), BOTH(f), PG(f) or SQLITE(f). */
#ifndef POSTHORN_TESTS_STORE_ENGINES_H
#define POSTHORN_TESTS_STORE_ENGINES_H

#include <dirent.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/xmalloc.h"

enum kind { KIND_SQLITE, KIND_PG };
static const enum kind kind_sqlite = KIND_SQLITE, kind_pg = KIND_PG;

/* One test's database: SQLite (nothing to hold: the database is in the test's data
 * directory) or a PostgreSQL schema. */
struct engine {
	enum kind kind;
	char schema[64]; /* PostgreSQL: the test's schema */
	char *target;    /* PostgreSQL: the URL with search_path set to schema; malloc'd */
};

/* The engine a test was listed with (the initial state of ON()). */
static inline enum kind engine_kind(void **state)
{
	return *(const enum kind *)*state;
}

/* The test database, or NULL when PostgreSQL runs skip. */
static inline const char *engine_pg_url(void)
{
	const char *url = getenv("POSTHORN_TEST_PGURL");
	return url == NULL || url[0] == '\0' ? NULL : url;
}

/* url with search_path set to schema (a URI or a keyword/value connection string):
 * malloc'd. */
static inline char *pg_target_dup(const char *url, const char *schema)
{
	size_t n = strlen(url) + strlen(schema) + 64;
	char *t = xmalloc(n);
	if (strstr(url, "://") != NULL)
		snprintf(t, n, "%s%coptions=-csearch_path%%3D%s", url,
		         strchr(url, '?') != NULL ? '&' : '?', schema);
	else
		snprintf(t, n, "%s options='-csearch_path=%s'", url, schema);
	return t;
}

static inline void engine_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Run one script on the test database outside any schema of a test: 0, or -1. */
static inline int pg_admin(const char *script)
{
	PGconn *c = PQconnectdb(engine_pg_url());
	int ret = -1;
	if (PQstatus(c) != CONNECTION_OK) {
		print_error("pg_admin: %s\n", PQerrorMessage(c));
	} else {
		PQsetNoticeProcessor(c, engine_quiet, NULL); /* DROP SCHEMA ... CASCADE's list */
		PGresult *r = PQexec(c, script);
		if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
			ret = 0;
		else
			print_error("pg_admin: %s: %s\n", script, PQerrorMessage(c));
		PQclear(r);
	}
	PQfinish(c);
	return ret;
}

/* Make the test's database: 1 ready, 0 the test skips (PostgreSQL without
 * POSTHORN_TEST_PGURL), -1 error. prefix names the schema (the program's name). */
static inline int engine_start(struct engine *e, enum kind kind, const char *prefix)
{
	static unsigned serial;
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	if (kind == KIND_SQLITE)
		return 1;
	if (engine_pg_url() == NULL)
		return 0;
	char create[128];
	snprintf(e->schema, sizeof(e->schema), "%s_%ld_%u", prefix, (long)getpid(), ++serial);
	snprintf(create, sizeof(create), "CREATE SCHEMA %s", e->schema);
	if (pg_admin(create) < 0)
		return -1;
	e->target = pg_target_dup(engine_pg_url(), e->schema);
	return 1;
}

/* Drop what engine_start() made. */
static inline void engine_stop(struct engine *e)
{
	if (e->kind == KIND_PG && e->target != NULL) {
		char drop[128];
		snprintf(drop, sizeof(drop), "DROP SCHEMA %s CASCADE", e->schema);
		(void)pg_admin(drop);
	}
	free(e->target);
	e->target = NULL;
}

/* store_open_engine()'s engine name and URL for this test. */
static inline const char *engine_name(const struct engine *e)
{
	return e->kind == KIND_PG ? "postgresql" : "sqlite";
}

static inline bool engine_is_pg(const struct engine *e)
{
	return e->kind == KIND_PG;
}

/* The fixture a test program's setup() left in *state; a PostgreSQL test without a database
 * (NULL) skips. */
static inline void *engine_fixture(void **state)
{
	if (*state == NULL)
		skip();
	return *state;
}
/* For the store's test programs, whose struct fixture holds its struct engine as eng. */
#define fixture_get(state) ((struct fixture *)engine_fixture(state))
#define on_pg(f) engine_is_pg(&(f)->eng)

/* The entries of dir (not the "." names): their count, -1 when dir cannot be read. */
static inline int engine_count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

/* The message files of the store in dir: files in messages/xx/ over all fan-out
 * directories. */
static inline int engine_count_blobs(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/messages", dir);
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char sub[1024];
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		n += engine_count_files(sub);
	}
	closedir(d);
	return n;
}

/* Message files are unlinked right after the writer's callbacks: wait (up to 2 s) until the
 * count is n, and return the last count seen. */
static inline int engine_wait_blobs(const char *dir, int n)
{
	int c = engine_count_blobs(dir);
	for (int i = 0; i < 200 && c != n; i++) {
		usleep(10000);
		c = engine_count_blobs(dir);
	}
	return c;
}

/* Assert that the store in dir holds n message files; on PostgreSQL every body is in the
 * database (a shared store keeps no message files), so none. */
static inline void engine_expect_blobs(const struct engine *e, const char *dir, int n)
{
	int want = engine_is_pg(e) ? 0 : n;
	assert_int_equal(engine_wait_blobs(dir, want), want);
}
/* The same for the store's test programs (struct fixture with eng and dir). */
#define count_files(dir) engine_count_files(dir)
#define count_blobs(f) engine_count_blobs((f)->dir)
#define expect_blobs(f, n) engine_expect_blobs(&(f)->eng, (f)->dir, (n))

/* nftw() callback removing everything under a test's directory. */
static inline int engine_rm_entry(const char *path, const struct stat *st, int flag,
                                  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove a test's data directory and everything in it. */
static inline void engine_rm_tree(const char *dir)
{
	nftw(dir, engine_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A test on one engine, named after it. */
#define ON(kind, f)                                                                                \
	{                                                                                          \
#kind ": " #f, f, setup, teardown, (void *)&kind_##kind                            \
	}
#define BOTH(f) ON(sqlite, f), ON(pg, f)
#define PG(f) ON(pg, f)
#define SQLITE(f) ON(sqlite, f)

#endif
