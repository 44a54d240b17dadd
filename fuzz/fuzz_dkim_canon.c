/* libFuzzer target for DKIM canonicalisation: the header section is split into fields,
 * each is canonicalised (relaxed output never holds CR, LF, a WSP run, or WSP before its
 * CRLF), fields are selected for an h= list, and the body is canonicalised whole and in
 * chunks whose size comes from the first byte: both must give the same octets, and the
 * output must end as RFC 6376 §3.4.3/§3.4.4 say. Also the signing domain is picked, and the
 * input is signed with an Ed25519 key (one field, ending in CRLF, or a refusal for a message
 * without From). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "mime/dkim_canon.h"
#include "mime/dkim_sign.h"

static void collect(void *ctx, const unsigned char *data, size_t len)
{
	if (buf_append(ctx, data, len) < 0)
		abort();
}

static void body(enum dkim_canon canon, const uint8_t *data, size_t size, size_t chunk,
                 struct buf *out)
{
	struct dkim_body_canon *bc = malloc(sizeof(*bc));
	dkim_body_canon_init(bc, canon, collect, out);
	if (chunk == 0)
		dkim_body_canon_update(bc, data, size);
	else
		for (size_t pos = 0; pos < size; pos += chunk)
			dkim_body_canon_update(bc, data + pos,
			                       size - pos < chunk ? size - pos : chunk);
	dkim_body_canon_final(bc);
	free(bc);
}

static void check_relaxed_field(const struct buf *b)
{
	if (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
		abort();
	for (size_t i = 0; i + 2 < b->len; i++) {
		char c = b->data[i];
		if (c == '\r' || c == '\n' || c == '\t')
			abort();
		if (c == ' ' && (b->data[i + 1] == ' ' || i + 3 == b->len))
			abort();
	}
}

static void check_body(enum dkim_canon canon, const struct buf *b)
{
	if (b->len == 0) {
		if (canon == DKIM_CANON_SIMPLE)
			abort();
		return;
	}
	if (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
		abort();
	if (b->len >= 4 && memcmp(b->data + b->len - 4, "\r\n\r\n", 4) == 0 &&
	    !(canon == DKIM_CANON_SIMPLE && b->len == 2))
		abort(); /* an empty line at the end */
	for (size_t i = 0; i < b->len; i++) {
		bool cr = b->data[i] == '\r', lf = b->data[i] == '\n';
		if ((cr && (i + 1 == b->len || b->data[i + 1] != '\n')) ||
		    (lf && (i == 0 || b->data[i - 1] != '\r')))
			abort(); /* bare CR or LF */
	}
}

static void sign(const uint8_t *data, size_t size)
{
	static EVP_PKEY *pkey;
	if (pkey == NULL)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct dkim_key key = {"example.test", "fuzz", DKIM_ALG_ED25519, pkey};
	struct buf out;
	buf_init(&out, 1 << 24);
	const char *error;
	int n = dkim_sign(data, size, &key, 1, 1765000000, &out, &error);
	if (n == 1 && (out.len < 2 || memcmp(out.data + out.len - 2, "\r\n", 2) != 0 ||
	               memcmp(out.data, "DKIM-Signature: v=1;", 20) != 0))
		abort();
	if (n != 1 && (n != -1 || out.len != 0))
		abort();
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t chunk = (size_t)(data[0] % 23) + 1;
	data++;
	size--;
	struct arena *a = arena_new(4096);
	struct dkim_field *fields;
	size_t body_start;
	size_t n = dkim_canon_fields(a, data, size, 1000, &fields, &body_start);
	struct buf b;
	buf_init(&b, 1 << 24);
	for (size_t i = 0; i < n; i++) {
		if (fields[i].start + fields[i].len > size ||
		    fields[i].start + fields[i].len > body_start)
			abort();
		buf_reset(&b);
		if (dkim_canon_header(DKIM_CANON_RELAXED, data + fields[i].start, fields[i].len,
		                      true, &b) < 0)
			abort();
		check_relaxed_field(&b);
	}
	static const char *const names[] = {"From", "To", "from", "Subject", "FROM", "Date", "to"};
	size_t picked[7];
	dkim_canon_select(data, fields, n, names, 7, picked);
	for (size_t i = 0; i < 7; i++)
		if (picked[i] != SIZE_MAX &&
		    (picked[i] >= n || !dkim_canon_field_is(data, &fields[picked[i]], names[i])))
			abort();
	(void)dkim_sign_domain(a, data, size);
	for (int c = 0; c < 2; c++) {
		enum dkim_canon canon = c == 0 ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
		struct buf whole, parts;
		buf_init(&whole, 1 << 24);
		buf_init(&parts, 1 << 24);
		body(canon, data + body_start, size - body_start, 0, &whole);
		body(canon, data + body_start, size - body_start, chunk, &parts);
		if (whole.len != parts.len ||
		    memcmp(buf_cstr(&whole), buf_cstr(&parts), whole.len) != 0)
			abort();
		check_body(canon, &whole);
		buf_free(&whole);
		buf_free(&parts);
	}
	sign(data, size);
	buf_free(&b);
	arena_free(&a);
	return 0;
}
