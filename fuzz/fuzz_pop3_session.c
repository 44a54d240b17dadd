/* libFuzzer target for a whole POP3 session: the input is what a client sends, through a
 * socketpair into the real engine (pop3_server_accept(): parser, command table, USER/PASS,
 * AUTH, the maildrop with two messages, RETR/TOP with dot-stuffing, DELE and the UPDATE
 * state at QUIT), see fuzz_session.h. USER user@example.org / PASS secret logs in to an
 * account of the run's own. The input is fed whole and again in pieces (fuzz_chunks.h):
 * the +OK/-ERR status lines must be the same up to where the shorter transcript ends;
 * every line the server sends ends in CRLF. */
#include "fuzz_session.h"

#include "pop3/pop3_server.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pop3_server *fuzz_pop3;

/* The status lines ('+' or '-' each) of a transcript, skipping multi-line bodies (up to
 * the "." line); returns the count. */
static size_t fuzz_pop3_status(const struct buf *out, char *res, size_t max)
{
	size_t n = 0;
	bool multi = false;
	const char *p = out->data, *end = out->data + out->len;
	while (p != NULL && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;
		size_t len = (size_t)(nl - p);
		if (len < 1 || p[len - 1] != '\r')
			abort();
		if (multi) {
			if (len == 2 && p[0] == '.')
				multi = false;
		} else if (p[0] == '+' || p[0] == '-') {
			if (n < max)
				res[n++] = p[0];
			/* "+OK" then a list or a message: CAPA, LIST, UIDL, RETR, TOP without an
			 * argument-less single-line form; the client's command decides, so take any
			 * +OK followed by a line that is not a status as multi-line. */
			const char *next = nl + 1;
			multi = p[0] == '+' && next < end && *next != '+' && *next != '-';
		}
		p = nl + 1;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_env_init("");
	if (fuzz_pop3 == NULL)
		fuzz_pop3 = pop3_server_new(fuzz_env.store, NULL, fuzz_env.conf);
	struct pop3_listener li = {.server = fuzz_pop3, .implicit_tls = false};
	fuzz_session_compare(pop3_server_accept, &li, 110, data, size, fuzz_pop3_status);
	return 0;
}
