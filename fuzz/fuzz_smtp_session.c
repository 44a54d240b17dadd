/* libFuzzer target for a whole SMTP session: the input is what a client sends, through a
 * socketpair into the real engine (smtp_server_accept(): command table, state machine,
 * AUTH, DATA and BDAT framing, delivery into a SQLite store), see fuzz_session.h. The first
 * octet picks the listener: even port 25, odd submission (587, AUTH PLAIN with
 * user@example.org / secret logs in). On submission the input is also fed in pieces
 * (fuzz_chunks.h): the reply codes must be the same as for the whole input, up to where the
 * shorter transcript ends (the end of input may cut a pending reply). On port 25 the
 * pieces matter to the engine (RFC 2920 §3.1: a client that pipelines before EHLO is
 * dropped), so there the first line goes alone and its reply is awaited, then the rest
 * follows whole; no comparison. Every reply line must be a well-formed
 * reply: three digits then a space or a hyphen, CRLF-terminated. */
#include "fuzz_session.h"

#include "smtp/smtp_server.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct smtp_server *fuzz_smtp;

/* Reply codes of a transcript, one per line, checked for form; returns the count. */
static size_t fuzz_smtp_codes(const struct buf *out, char *codes, size_t max)
{
	size_t n = 0;
	const char *p = out->data, *end = out->data + out->len;
	while (p != NULL && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break; /* an unfinished last line: the connection was cut */
		size_t len = (size_t)(nl - p);
		if (len < 5 || p[len - 1] != '\r' || (p[3] != ' ' && p[3] != '-'))
			abort();
		for (int i = 0; i < 3; i++)
			if (p[i] < '0' || p[i] > '9')
				abort();
		if (n + 3 <= max) {
			memcpy(codes + n, p, 3);
			n += 3;
		}
		p = nl + 1;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_env_init("submission_messages_per_day = 0\nsubmission_recipients_per_day = 0\n");
	if (fuzz_smtp == NULL)
		fuzz_smtp = smtp_server_new(fuzz_env.store, NULL, fuzz_env.conf);
	if (size == 0)
		return 0;
	bool submission = (data[0] & 1) != 0;
	struct smtp_listener li = {
	    .server = fuzz_smtp,
	    .kind = submission ? CONF_LISTENER_SUBMISSION : CONF_LISTENER_SMTP,
	};
	struct buf whole;
	/* port 25: the first line alone, as a client waits for the reply to EHLO */
	fuzz_session_run(smtp_server_accept, &li, submission ? 587 : 25, data + 1, size - 1, false,
	                 !submission, &whole);
	static char a[3 * 4096], b[3 * 4096];
	size_t na = fuzz_smtp_codes(&whole, a, sizeof(a));
	if (submission) {
		struct buf parts;
		fuzz_session_run(smtp_server_accept, &li, 587, data + 1, size - 1, true, false,
		                 &parts);
		size_t nb = fuzz_smtp_codes(&parts, b, sizeof(b));
		if (memcmp(a, b, na < nb ? na : nb) != 0)
			fuzz_session_show(&whole, &parts);
		FUZZ_SAME(memcmp(a, b, na < nb ? na : nb) == 0);
		buf_free(&parts);
	}
	buf_free(&whole);
	return 0;
}
