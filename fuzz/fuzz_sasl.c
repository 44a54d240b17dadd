/* libFuzzer target for auth/sasl and core/base64: the input is split at '\n' into client
 * responses, fed to a PLAIN and to a LOGIN exchange. A leading '!' means "no initial
 * response" (the first step gets NULL; a '\n' right after it is skipped). Checks the
 * contract: credentials bounded and complete, finished exchanges stay finished, and
 * base64 decode/encode round-trips exactly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"
#include "core/base64.h"
#include "core/banned.h"

#define FUZZ_MAX_LINES 8

static void fuzz_check(int cond)
{
	if (!cond)
		abort();
}

/* A strictly decoded string must encode back to exactly the same text. */
static void fuzz_base64_roundtrip(const char *line)
{
	size_t len = strlen(line);
	unsigned char *out = malloc(base64_decoded_max(len) + 1);
	ssize_t n = base64_decode(line, len, out, base64_decoded_max(len));
	if (n >= 0) {
		fuzz_check((size_t)n <= base64_decoded_max(len));
		char *again = base64_encode_dup(out, (size_t)n);
		fuzz_check(strcmp(again, line) == 0);
		free(again);
	}
	free(out);
}

static void fuzz_exchange(enum sasl_mech mech, size_t max_len, char **lines, size_t count,
                          int no_initial)
{
	struct sasl_server *sasl = sasl_server_new(mech, max_len);
	const char *chal, *err;
	int ret = 0;
	size_t i = 0;

	if (no_initial) {
		ret = sasl_server_step(sasl, NULL, &chal, &err);
		fuzz_check(ret == 0 && chal != NULL);
	}
	while (ret == 0 && i < count) {
		ret = sasl_server_step(sasl, lines[i++], &chal, &err);
		fuzz_check(ret != 0 || chal != NULL);
		fuzz_check(ret != -1 || err != NULL);
	}
	if (ret == 1) {
		const char *authzid, *authcid, *password;
		sasl_server_credentials(sasl, &authzid, &authcid, &password);
		fuzz_check(strlen(authzid) <= SASL_FIELD_MAX);
		fuzz_check(strlen(authcid) >= 1 && strlen(authcid) <= SASL_FIELD_MAX);
		fuzz_check(strlen(password) >= 1 && strlen(password) <= SASL_FIELD_MAX);
	}
	if (ret != 0) /* finished either way: no more steps accepted */
		fuzz_check(sasl_server_step(sasl, "AGEAYg==", &chal, &err) == -1);
	sasl_server_free(&sasl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int no_initial = size > 0 && data[0] == '!';
	if (no_initial) { /* "!" or "!\n" */
		size_t skip = size > 1 && data[1] == '\n' ? 2 : 1;
		data += skip;
		size -= skip;
	}
	/* One NUL-terminated copy, cut into lines in place (embedded NULs shorten a line, as a
	 * protocol reading a C string would). */
	char *copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	char *lines[FUZZ_MAX_LINES];
	size_t count = 0;
	char *p = copy;
	while (count < FUZZ_MAX_LINES) {
		lines[count++] = p;
		char *nl = memchr(p, '\n', (size_t)(copy + size - p));
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	for (size_t i = 0; i < count; i++)
		fuzz_base64_roundtrip(lines[i]);
	/* Vary the caller's cap a little with the input size. */
	size_t max_len = size % 3 == 0 ? 0 : 64 + size % 700;
	fuzz_exchange(SASL_MECH_PLAIN, max_len, lines, count, no_initial);
	fuzz_exchange(SASL_MECH_LOGIN, max_len, lines, count, no_initial);
	free(copy);
	return 0;
}
