/* DKIM's body and header hashes (see dkim_hash.h). */
#include "mime/dkim_hash.h"

#include <stdlib.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "core/banned.h"

struct dkim_hash_body_ctx {
	EVP_MD_CTX *md;
	uint64_t left;  /* canonical octets still to hash */
	uint64_t total; /* canonical octets seen */
	int failed;
};

static void dkim_hash_body_out(void *ctx, const unsigned char *data, size_t len)
{
	struct dkim_hash_body_ctx *h = ctx;
	h->total += len;
	size_t n = h->left < len ? (size_t)h->left : len;
	if (n > 0 && EVP_DigestUpdate(h->md, data, n) != 1)
		h->failed = 1;
	h->left -= n;
}

int dkim_hash_body(const unsigned char *msg, size_t body, size_t len, enum dkim_canon canon,
                   uint64_t limit, unsigned char digest[DKIM_HASH_LEN], uint64_t *canon_len_r)
{
	struct dkim_hash_body_ctx h = {.md = EVP_MD_CTX_new(), .left = limit};
	if (h.md == NULL || EVP_DigestInit_ex(h.md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h.md);
		return -1;
	}
	struct dkim_body_canon *bc = xmalloc(sizeof(*bc));
	dkim_body_canon_init(bc, canon, dkim_hash_body_out, &h);
	dkim_body_canon_update(bc, msg + body, len - body);
	dkim_body_canon_final(bc);
	free(bc);
	unsigned int dlen = 0;
	int ok = !h.failed && EVP_DigestFinal_ex(h.md, digest, &dlen) == 1 && dlen == DKIM_HASH_LEN;
	EVP_MD_CTX_free(h.md);
	if (canon_len_r != NULL)
		*canon_len_r = h.total;
	return ok ? 0 : -1;
}

int dkim_hash_fields(EVP_MD_CTX *md, enum dkim_canon canon, const unsigned char *msg,
                     const struct dkim_field *fields, const size_t *picked, size_t n)
{
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (picked[i] == SIZE_MAX)
			continue;
		buf_reset(&b);
		const struct dkim_field *f = &fields[picked[i]];
		if (dkim_canon_header(canon, msg + f->start, f->len, true, &b) < 0 ||
		    EVP_DigestUpdate(md, b.data, b.len) != 1)
			ret = -1;
	}
	buf_free(&b);
	return ret;
}
