/* libFuzzer target for auth/sasl and core/base64: the input is split at '\n' into client
 * responses, fed to a PLAIN, a LOGIN and a SCRAM-SHA-256 exchange. A leading '#' means the
 * lines are raw messages that the harness base64-encodes first (so the fuzzer reaches the
 * SCRAM and PLAIN parsers directly); then a '!' means "no initial response" (the first step
 * gets NULL; a '\n' right after it is skipped). SCRAM runs with the RFC 7677 §3 keys for
 * "user" (password "pencil") and the RFC's server nonce, so a seed can complete a real
 * exchange. Checks the contract: credentials bounded and complete, return values and
 * challenges consistent, a SCRAM success only for the user with keys, finished exchanges
 * stay finished, and base64 decode/encode round-trips exactly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"
#include "core/base64.h"
#include "core/banned.h"

#define FUZZ_MAX_LINES 8

/* RFC 7677 §3: salt, StoredKey and ServerKey of "pencil". */
#define FUZZ_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define FUZZ_STORED_KEY "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
#define FUZZ_SERVER_KEY "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define FUZZ_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static struct password_scram fuzz_keys;

static void fuzz_check(int cond)
{
	if (!cond)
		abort();
}

static void fuzz_keys_init(void)
{
	if (fuzz_keys.iterations != 0)
		return;
	fuzz_check(base64_decode(FUZZ_SALT, strlen(FUZZ_SALT), fuzz_keys.salt,
	                         sizeof(fuzz_keys.salt)) == 16);
	fuzz_keys.salt_len = 16;
	fuzz_check(base64_decode(FUZZ_STORED_KEY, strlen(FUZZ_STORED_KEY), fuzz_keys.stored_key,
	                         sizeof(fuzz_keys.stored_key)) == PASSWORD_SCRAM_KEY_LEN);
	fuzz_check(base64_decode(FUZZ_SERVER_KEY, strlen(FUZZ_SERVER_KEY), fuzz_keys.server_key,
	                         sizeof(fuzz_keys.server_key)) == PASSWORD_SCRAM_KEY_LEN);
	fuzz_keys.iterations = 4096;
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

/* One step; SCRAM's "need credentials" is answered here like a protocol would. */
static int fuzz_step(struct sasl_server *sasl, enum sasl_mech mech, const char *line,
                     const char **chal, const char **err, int *had_keys)
{
	int ret = sasl_server_step(sasl, line, chal, err);
	fuzz_check(ret >= -1 && ret <= 2);
	fuzz_check(ret != 2 || mech == SASL_MECH_SCRAM_SHA_256);
	if (ret == 2) {
		const char *user = sasl_server_username(sasl);
		fuzz_check(strlen(user) >= 1 && strlen(user) <= SASL_FIELD_MAX);
		*had_keys = strcmp(user, "user") == 0;
		sasl_server_set_credentials(sasl, *had_keys ? &fuzz_keys : NULL);
		ret = sasl_server_step(sasl, NULL, chal, err);
		fuzz_check(ret == 0 && (*chal)[0] != '\0');
	}
	fuzz_check(ret != 0 || *chal != NULL);
	fuzz_check(ret != -1 || *err != NULL);
	fuzz_check(ret == 0 || strcmp(*chal, "") == 0);
	return ret;
}

static void fuzz_exchange(enum sasl_mech mech, size_t max_len, char **lines, size_t count,
                          int no_initial)
{
	struct sasl_server *sasl = sasl_server_new(mech, max_len);
	const char *chal, *err;
	int ret = 0, had_keys = 0;
	size_t i = 0;

	if (mech == SASL_MECH_SCRAM_SHA_256)
		sasl_server_set_test_nonce(sasl, FUZZ_SNONCE);
	if (no_initial) {
		ret = sasl_server_step(sasl, NULL, &chal, &err);
		fuzz_check(ret == 0 && chal != NULL);
	}
	while (ret == 0 && i < count)
		ret = fuzz_step(sasl, mech, lines[i++], &chal, &err, &had_keys);
	int outcome = sasl_server_outcome(sasl);
	if (mech != SASL_MECH_SCRAM_SHA_256)
		fuzz_check(outcome == -1);
	else if (ret == 1)
		fuzz_check(outcome == 0 || (outcome == 1 && had_keys));
	else if (ret == -1)
		fuzz_check(outcome == -1);
	if (ret == 1 && mech != SASL_MECH_SCRAM_SHA_256) {
		const char *authzid, *authcid, *password;
		sasl_server_credentials(sasl, &authzid, &authcid, &password);
		fuzz_check(strlen(authzid) <= SASL_FIELD_MAX);
		fuzz_check(strlen(authcid) >= 1 && strlen(authcid) <= SASL_FIELD_MAX);
		fuzz_check(strlen(password) >= 1 && strlen(password) <= SASL_FIELD_MAX);
	}
	if (ret == -1 || ret == 1) /* finished either way: no more steps accepted */
		fuzz_check(sasl_server_step(sasl, "AGEAYg==", &chal, &err) == -1);
	sasl_server_free(&sasl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_keys_init();
	int raw = size > 0 && data[0] == '#';
	if (raw) {
		data++;
		size--;
	}
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
	for (size_t i = 0; i < count; i++) {
		if (raw)
			lines[i] =
			    base64_encode_dup((const unsigned char *)lines[i], strlen(lines[i]));
		fuzz_base64_roundtrip(lines[i]);
	}
	/* Vary the caller's cap a little with the input size. */
	size_t max_len = size % 3 == 0 ? 0 : 64 + size % 700;
	fuzz_exchange(SASL_MECH_PLAIN, max_len, lines, count, no_initial);
	fuzz_exchange(SASL_MECH_LOGIN, max_len, lines, count, no_initial);
	fuzz_exchange(SASL_MECH_SCRAM_SHA_256, size % 3 == 0 ? 0 : max_len + 100, lines, count,
	              no_initial);
	if (raw) {
		for (size_t i = 0; i < count; i++)
			free(lines[i]);
	}
	free(copy);
	return 0;
}
