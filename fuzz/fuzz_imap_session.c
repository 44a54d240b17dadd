/* libFuzzer target for a whole IMAP session: the input is what a client sends, through a
 * socketpair into the real engine (imap_server_accept(): parser, literals, command table,
 * pre-auth and authenticated commands, the store), see fuzz_session.h. LOGIN
 * user@example.org secret (or AUTHENTICATE PLAIN) logs in. Each run gets an account of its
 * own with the same two messages in INBOX (fuzz_env_account_new()), so a run starts from
 * the same state whatever earlier runs did. The input is fed
 * whole and again in pieces (fuzz_chunks.h), each with a fresh account: the tagged
 * results (OK, NO, BAD in order) must be the same up to where the shorter transcript ends
 * (the end of input may cut a pending reply). Every line the server sends must end in
 * CRLF and start with "* ", "+ " or a tag. */
#include "fuzz_session.h"

#include "imap/imap_server.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct imap_server *fuzz_imap;

/* Tagged results of a transcript ('O', 'N', 'B' each); returns the count. Lines inside a
 * literal the server sent ({n}CRLF then n octets) are skipped. */
static size_t fuzz_imap_results(const struct buf *out, char *res, size_t max)
{
	size_t n = 0;
	bool cont = false; /* this line goes on after a literal */
	const char *p = out->data, *end = out->data + out->len;
	while (p != NULL && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;
		size_t len = (size_t)(nl - p);
		if (len < 2 || p[len - 1] != '\r')
			abort();
		const char *sp = memchr(p, ' ', len);
		if (sp == NULL && !cont)
			abort();
		if (!cont && p[0] != '*' && p[0] != '+' && n < max) {
			const char *r = sp + 1;
			res[n++] = strncmp(r, "OK", 2) == 0   ? 'O'
			           : strncmp(r, "NO", 2) == 0 ? 'N'
			                                      : 'B';
		}
		/* a literal at the end of the line: skip its octets */
		const char *q = nl - 1;
		size_t lit = 0;
		if (q > p && q[-1] == '}') {
			const char *o = q - 2;
			size_t mul = 1;
			while (o >= p && *o >= '0' && *o <= '9') {
				lit += (size_t)(*o - '0') * mul;
				mul *= 10;
				o--;
			}
			if (o < p || *o != '{')
				lit = 0;
		}
		p = nl + 1;
		cont = lit > 0;
		if (lit > (size_t)(end - p))
			break;
		p += lit;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_env_init("");
	if (fuzz_imap == NULL)
		fuzz_imap = imap_server_new(fuzz_env.store, NULL, fuzz_env.conf);
	struct imap_listener li = {.server = fuzz_imap, .implicit_tls = false};
	fuzz_session_compare(imap_server_accept, &li, 143, data, size, fuzz_imap_results);
	return 0;
}
