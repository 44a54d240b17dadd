/* libFuzzer target for smtp/smtp_reply: split the input into lines at LF (removing a CR before
 * it, as conn_read_line does), feed them, and check the contract: a complete reply has a code
 * 200..559, a well-formed enhanced code of the same class or none, no control characters in
 * its text and no more text than the maximum; the EHLO reader runs on every complete reply. */
#include <stdint.h>
#include <string.h>

#include "core/log.h"
#include "smtp/smtp_reply.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_reply(const struct smtp_reply *r)
{
	ASSERT(r->code >= 200 && r->code <= 559);
	ASSERT(r->lines >= 1 && r->lines <= SMTP_REPLY_LINES_MAX);
	ASSERT(r->text.len <= SMTP_REPLY_TEXT_MAX);
	size_t e = strlen(r->enhanced);
	if (e > 0) {
		ASSERT(e >= 5 && r->enhanced[0] == '0' + r->code / 100 && r->enhanced[1] == '.');
	}
	for (size_t i = 0; i < r->text.len; i++) {
		unsigned char c = (unsigned char)r->text.data[i];
		ASSERT(c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f));
	}
	struct smtp_ehlo ehlo;
	smtp_reply_ehlo(r, &ehlo);
	ASSERT((ehlo.auth & ~(SMTP_EHLO_AUTH_PLAIN | SMTP_EHLO_AUTH_LOGIN)) == 0);
	struct buf one;
	buf_init(&one, SMTP_REPLY_TEXT_MAX + 1);
	const char *s = smtp_reply_oneline(r, &one);
	ASSERT(strchr(s, '\n') == NULL);
	buf_free(&one);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p);
	const char *s = (const char *)data;
	size_t pos = 0;
	while (pos < size) {
		const char *nl = memchr(s + pos, '\n', size - pos);
		size_t n = nl != NULL ? (size_t)(nl - (s + pos)) : size - pos;
		size_t l = n > 0 && s[pos + n - 1] == '\r' ? n - 1 : n;
		const char *error = NULL;
		int r = smtp_reply_parser_feed(&p, s + pos, l, &error);
		if (r < 0)
			ASSERT(error != NULL && error[0] != '\0');
		else if (r == 1)
			fuzz_check_reply(&p.reply);
		pos += n + 1;
	}
	smtp_reply_parser_deinit(&p);
	return 0;
}
