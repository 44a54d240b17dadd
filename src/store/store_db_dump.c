/* `posthorn db export | import`: a whole store as a text dump, to move it between engines
 * (SQLite to PostgreSQL and back) or machines. Every row of every table is written with
 * its ids, UIDs, UIDVALIDITY, MODSEQs, flags, quotas and credentials as they are, so an
 * IMAP or POP3 client does not notice the move; bodies kept in files are written into the
 * dump, and an import keeps every body in the database.
 *
 * Format (version 1), one record per line:
 *   posthorn-dump 1
 *   table NAME COLUMN...        the columns of the rows that follow, in order
 *   FIELD<TAB>FIELD...          one row: \N is NULL; integers in decimal; text with \\,
 *                               \t, \n and \r escaped; blobs in lower-case hex
 *   end                         the dump is complete
 * An import checks the table and column names against its own and refuses anything else. */
#include "store/store_db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define DUMP_MAGIC "posthorn-dump 1"
/* Longest line an import reads: a body of 256 MiB in hex, and the rest of its row. */
#define DUMP_LINE_MAX ((size_t)520 << 20)

struct dump_table {
	const char *name;
	const char *columns; /* ", "-separated */
	const char *types;   /* per column: 'i' integer, 's' text, 'b' blob */
	const char *order;   /* ORDER BY of the export */
};

/* In dependency order: a row's references come before it. */
static const struct dump_table dump_tables[] = {
    {"meta", "key, value", "si", "key"},
    {"domains", "id, name, created", "isi", "id"},
    {"accounts",
     "id, address, domain_id, password_hash, quota, used_bytes, created, apop_secret,"
     " message_limit",
     "isisiiisi", "id"},
    {"aliases", "id, alias, domain_id, target", "isis", "id"},
    {"mailboxes",
     "id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq, keywords,"
     " objectid, tombstone_floor",
     "iissiiissi", "id"},
    {"messages",
     "id, sha256, size, received_at, mail_from, hdr_from, subject, message_id, envelope,"
     " body, bodystructure, content",
     "isiisssssssb", "id"},
    {"mailbox_entries",
     "id, mailbox_id, uid, message_id, flags, keywords, modseq, internal_date, save_date",
     "iiiiisiii", "id"},
    {"expunged", "mailbox_id, uid, modseq, expunged_at", "iiii", "mailbox_id, uid"},
    {"subscriptions", "account_id, name", "is", "account_id, name"},
    {"metadata", "account_id, mailbox_id, name, value", "iisb", "account_id, mailbox_id, name"},
    {"acl", "mailbox_id, identifier, rights", "iss", "mailbox_id, identifier"},
    {"queue",
     "id, message_id, mail_from, ret, envid, smtputf8, eightbit, requiretls, domain, created,"
     " attempts, next_attempt, held, delay_warned, lease_owner, lease_until",
     "iisisiiisiiiiisi", "id"},
    {"queue_rcpts",
     "id, entry_id, address, orcpt, notify, status, last_error, last_attempt, remote_mta,"
     " enhanced_status",
     "iissiisiss", "id"},
    {"tlsrpt",
     "day, policy_domain, policy_type, policy_string, mx_host, result_type, sending_ip,"
     " receiving_mx, receiving_ip, sessions",
     "issssssssi",
     "day, policy_domain, policy_type, policy_string, mx_host, result_type,"
     " sending_ip, receiving_mx, receiving_ip"},
    {"tlsrpt_days", "day, claimed", "ii", "day"},
    {"dmarc",
     "day, policy_domain, policy, rua, source_ip, header_from, envelope_from, disposition,"
     " reason, dkim_aligned, spf_aligned, dkim, spf, messages",
     "issssssssssssi",
     "day, policy_domain, policy, rua, source_ip, header_from, envelope_from, disposition,"
     " reason, dkim_aligned, spf_aligned, dkim, spf"},
    {"dmarc_days", "day, claimed", "ii", "day"},
};
#define DUMP_TABLE_COUNT (sizeof(dump_tables) / sizeof(dump_tables[0]))
_Static_assert(DUMP_TABLE_COUNT == STORE_DB_DUMP_TABLES, "STORE_DB_DUMP_TABLES");
/* The column of messages that holds a body, and of its content address. */
#define DUMP_MESSAGES_TABLE 5
#define DUMP_CONTENT_COLUMN 11
#define DUMP_SHA_COLUMN 1
#define DUMP_SIZE_COLUMN 2

/* ---- statement texts ---- */

static char *dump_select_text(const struct dump_table *t)
{
	struct buf b;
	buf_init(&b, 4096);
	if (buf_printf(&b, "SELECT %s FROM %s ORDER BY %s", t->columns, t->name, t->order) < 0)
		log_panic("store: dump statement too long");
	return b.data;
}

static char *dump_insert_text(const struct dump_table *t)
{
	struct buf b;
	buf_init(&b, 4096);
	int ret = buf_printf(&b, "INSERT INTO %s (%s) VALUES (", t->name, t->columns);
	for (size_t i = 0; ret == 0 && t->types[i] != '\0'; i++)
		ret = buf_printf(&b, "%s?%zu", i == 0 ? "" : ", ", i + 1);
	/* A new store already has meta rows of its own: the dump's win. */
	if (ret == 0)
		ret = buf_printf(&b, ")%s",
		                 strcmp(t->name, "meta") == 0
		                     ? " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
		                     : "");
	if (ret < 0)
		log_panic("store: dump statement too long");
	return b.data;
}

void store_db_dump_texts(const char **texts)
{
	texts[SQ_DUMP_EMPTY] =
	    "SELECT (SELECT count(*) FROM domains)"
	    " + (SELECT count(*) FROM accounts) + (SELECT count(*) FROM messages)";
	for (size_t i = 0; i < DUMP_TABLE_COUNT; i++) {
		texts[SQ_DUMP_FIRST + 2 * i] = dump_select_text(&dump_tables[i]);
		texts[SQ_DUMP_FIRST + 2 * i + 1] = dump_insert_text(&dump_tables[i]);
	}
}

/* ---- export ---- */

struct dump_out {
	FILE *out;
	const struct dump_table *table;
	const struct store *store;
	struct sql_conn *c;
	int error; /* errno of a failed write or read, or -1 */
	const char *what;
};

static void dump_text(FILE *out, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '\\':
			fputs("\\\\", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		default:
			putc(*s, out);
		}
	}
}

static void dump_hex(FILE *out, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		putc(hex[p[i] >> 4], out);
		putc(hex[p[i] & 15], out);
	}
}

static void dump_hex_cb(void *ctx, const unsigned char *p, size_t n)
{
	dump_hex(ctx, p, n);
}

/* A body kept in chunk rows or in its file, written as the row's content. */
static void dump_outside_body(struct dump_out *d, struct sql_row *r)
{
	const char *sha256 = sql_col_text0(r, DUMP_SHA_COLUMN), *error;
	uint64_t size = (uint64_t)sql_col_int(r, DUMP_SIZE_COLUMN);
	if (store_db_chunked(d->store, size)) {
		if (store_db_chunks_each(d->c, sql_col_int(r, 0), size, dump_hex_cb, d->out,
		                         &error) < 0) {
			log_error("store: export: %s", error);
			d->error = -1;
			d->what = "reading a body's chunk rows";
		}
		return;
	}
	int fd = -1;
	if (!blob_name_valid(sha256) ||
	    blob_open(d->store->messages_dir, sha256, &fd, &size) != 1) {
		d->error = -1;
		d->what = "a message file is missing";
		return;
	}
	unsigned char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		dump_hex(d->out, chunk, (size_t)n);
	if (n < 0) {
		d->error = errno;
		d->what = "reading a message file";
	}
	close(fd);
}

static void dump_row(void *ctx, struct sql_row *r)
{
	struct dump_out *d = ctx;
	const struct dump_table *t = d->table;
	bool messages = t == &dump_tables[DUMP_MESSAGES_TABLE];
	for (int i = 0; t->types[i] != '\0'; i++) {
		if (i > 0)
			putc('\t', d->out);
		if (messages && i == DUMP_CONTENT_COLUMN && sql_col_null(r, i)) {
			dump_outside_body(d, r);
		} else if (sql_col_null(r, i)) {
			fputs("\\N", d->out);
		} else if (t->types[i] == 'i') {
			fprintf(d->out, "%" PRId64, sql_col_int(r, i));
		} else if (t->types[i] == 's') {
			dump_text(d->out, sql_col_text0(r, i));
		} else {
			size_t n;
			const void *p = sql_col_blob(r, i, &n);
			dump_hex(d->out, p, n);
		}
	}
	putc('\n', d->out);
}

int store_db_export(struct store *store, FILE *out, const char **error_r)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0) {
		*error_r = "cannot read the database";
		return -1;
	}
	struct dump_out d = {.out = out, .store = store, .c = c};
	int ret = fprintf(out, "%s\n", DUMP_MAGIC) < 0 ? -1 : 0;
	for (size_t i = 0; ret == 0 && d.error == 0 && i < DUMP_TABLE_COUNT; i++) {
		const struct dump_table *t = &dump_tables[i];
		fprintf(out, "table %s ", t->name);
		for (const char *p = t->columns; *p != '\0'; p++) {
			if (*p != ',')
				putc(*p, out);
		}
		putc('\n', out);
		d.table = t;
		if (sql_each(c, SQ_DUMP_FIRST + 2 * (unsigned)i, dump_row, &d, "") < 0) {
			*error_r = store_error_fmt("cannot read table %s", t->name);
			ret = -1;
		}
	}
	ret = store_db_read_end(c, started, ret);
	if (ret == 0 && d.error != 0) {
		*error_r = d.error > 0 ? store_error_fmt("%s: %s", d.what, strerror(d.error))
		                       : store_error_fmt("%s", d.what);
		ret = -1;
	}
	if (ret == 0 && (fputs("end\n", out) == EOF || fflush(out) == EOF || ferror(out))) {
		*error_r = store_error_fmt("writing the dump: %s", strerror(errno));
		ret = -1;
	}
	return ret;
}

/* ---- import ---- */

/* Read one line (without its newline) into b (its max bounds it): 1, 0 at the end of
 * input, -1 too long. */
static int dump_line(FILE *in, struct buf *b)
{
	char chunk[65536];
	buf_reset(b);
	while (fgets(chunk, sizeof(chunk), in) != NULL) {
		size_t n = strlen(chunk);
		bool end = n > 0 && chunk[n - 1] == '\n';
		if (buf_append(b, chunk, end ? n - 1 : n) < 0)
			return -1;
		if (end)
			return 1;
	}
	return b->len > 0 ? 1 : 0;
}

static int dump_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode field [s, e) of type in place (text and blobs only shrink); fills p. 0, or -1. */
static int dump_field(char *s, char *e, char type, struct sql_param *p)
{
	*e = '\0';
	p->type = type;
	bool null = strcmp(s, "\\N") == 0;
	p->null = false;
	if (type == 'i' && null) {
		p->null = true; /* only columns that may be NULL take it: the database decides */
		return 0;
	}
	if (type == 'i') {
		char *end;
		errno = 0;
		p->value = strtoll(s, &end, 10);
		return end == s || *end != '\0' || errno != 0 ? -1 : 0;
	}
	if (null) {
		p->text = NULL;
		p->blob = NULL;
		p->size = 0;
		return 0;
	}
	char *w = s;
	if (type == 'b') {
		if ((e - s) % 2 != 0)
			return -1;
		for (char *r = s; r < e; r += 2) {
			int hi = dump_hexval(r[0]), lo = dump_hexval(r[1]);
			if (hi < 0 || lo < 0)
				return -1;
			*w++ = (char)(hi << 4 | lo);
		}
		p->blob = s;
		p->size = (size_t)(w - s);
		return 0;
	}
	for (char *r = s; r < e; r++) {
		if (*r != '\\') {
			*w++ = *r;
			continue;
		}
		r++;
		if (*r == '\\')
			*w++ = '\\';
		else if (*r == 't')
			*w++ = '\t';
		else if (*r == 'n')
			*w++ = '\n';
		else if (*r == 'r')
			*w++ = '\r';
		else
			return -1;
	}
	*w = '\0';
	p->text = s;
	return 0;
}

/* The "table NAME COLUMN..." line that must come for table t. */
static bool dump_header_ok(const char *line, const struct dump_table *t)
{
	struct buf want;
	buf_init(&want, 1024);
	bool ok = buf_printf(&want, "table %s ", t->name) == 0;
	for (const char *p = t->columns; ok && *p != '\0'; p++) {
		if (*p != ',')
			ok = buf_append(&want, p, 1) == 0;
	}
	ok = ok && strcmp(line, buf_cstr(&want)) == 0;
	buf_free(&want);
	return ok;
}

/* Insert one row line of table i: 0, or -1. A body that the store keeps in chunk rows
 * goes there instead of into the message row. */
static int dump_insert(const struct store *store, struct sql_conn *c, size_t i, char *line,
                       const char **error_r)
{
	const struct dump_table *t = &dump_tables[i];
	struct sql_param params[16];
	size_t n = strlen(t->types);
	char *s = line;
	for (size_t k = 0; k < n; k++) {
		char *e = strchr(s, '\t');
		if ((e == NULL) != (k == n - 1))
			break;
		if (e == NULL)
			e = s + strlen(s);
		if (dump_field(s, e, t->types[k], &params[k]) < 0) {
			*error_r =
			    store_error_fmt("bad value in column %zu of a %s row", k + 1, t->name);
			return -1;
		}
		s = e + 1;
		if (k < n - 1)
			continue;
		struct sql_param body = {0};
		if (i == DUMP_MESSAGES_TABLE && params[DUMP_CONTENT_COLUMN].blob != NULL &&
		    (uint64_t)params[DUMP_SIZE_COLUMN].value != params[DUMP_CONTENT_COLUMN].size) {
			*error_r = "a messages row whose size is not that of its content";
			return -1;
		}
		if (i == DUMP_MESSAGES_TABLE &&
		    store_db_chunked(store, params[DUMP_CONTENT_COLUMN].size)) {
			body = params[DUMP_CONTENT_COLUMN];
			params[DUMP_CONTENT_COLUMN].blob = NULL;
			params[DUMP_CONTENT_COLUMN].size = 0;
		}
		if (sql_exec_params(c, SQ_DUMP_FIRST + 2 * (unsigned)i + 1, params, n, error_r) < 0)
			return -1;
		if (body.blob != NULL && store_db_chunks_put(c, params[0].value, NULL, body.blob,
		                                             body.size, error_r) < 0)
			return -1;
		return 0;
	}
	*error_r = store_error_fmt("a %s row without %zu columns", t->name, n);
	return -1;
}

static int dump_import_lines(const struct store *store, struct sql_conn *c, FILE *in,
                             const char **error_r)
{
	struct buf line;
	size_t table = 0;
	bool in_table = false;
	int ret = -1;
	buf_init(&line, DUMP_LINE_MAX);
	if (dump_line(in, &line) != 1 || strcmp(buf_cstr(&line), DUMP_MAGIC) != 0) {
		*error_r = "not a Posthorn dump (version 1)";
		goto out;
	}
	for (;;) {
		int r = dump_line(in, &line);
		if (r <= 0) {
			*error_r = r < 0 ? "a line of the dump is too long" : "the dump ends early";
			goto out;
		}
		if (strcmp((char *)buf_cstr(&line), "end") == 0)
			break;
		if (strncmp((char *)buf_cstr(&line), "table ", 6) == 0) {
			if (in_table)
				table++;
			if (table >= DUMP_TABLE_COUNT ||
			    !dump_header_ok((char *)buf_cstr(&line), &dump_tables[table])) {
				*error_r = store_error_fmt(
				    "unexpected \"%.60s\" (want table %s)", (char *)buf_cstr(&line),
				    table < DUMP_TABLE_COUNT ? dump_tables[table].name : "end");
				goto out;
			}
			in_table = true;
			continue;
		}
		if (!in_table) {
			*error_r = "a row before any table";
			goto out;
		}
		if (dump_insert(store, c, table, (char *)buf_cstr(&line), error_r) < 0)
			goto out;
	}
	if (!in_table || table != DUMP_TABLE_COUNT - 1) {
		*error_r = "the dump lacks tables";
		goto out;
	}
	ret = 0;
	for (size_t i = 0; ret == 0 && i < DUMP_TABLE_COUNT; i++)
		ret = sql_ids_follow(c, dump_tables[i].name, error_r);
out:
	buf_free(&line);
	return ret;
}

int store_db_import(struct store *store, FILE *in, const char **error_r)
{
	struct store_db *s = db_store(store);
	int64_t rows = 0;
	pthread_mutex_lock(&s->admin_lock);
	int ret = sql_begin(s->admin, SQL_TX_WRITE, error_r);
	if (ret == 0 && sql_int(s->admin, SQ_DUMP_EMPTY, &rows, error_r, "") != 1)
		ret = -1;
	if (ret == 0 && rows > 0) {
		*error_r = "the store is not empty (import needs a new one)";
		ret = -1;
	}
	if (ret == 0)
		ret = dump_import_lines(store, s->admin, in, error_r);
	ret = sql_end(s->admin, ret, error_r);
	pthread_mutex_unlock(&s->admin_lock);
	return ret;
}
