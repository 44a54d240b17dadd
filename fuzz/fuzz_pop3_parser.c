/* libFuzzer target for pop3/pop3_parser: parse the input as one command line and check the
 * contract of pop3_parser.h: an accepted command has a known verb, an argument count its RFC
 * allows and arguments that rebuild the line; a refused one has a known static reason. The
 * input, NUL-terminated, is also fed to pop3_parser_number and checked against a reference. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/log.h"
#include "pop3/pop3_parser.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Argument counts from RFC 1939, 2449, 2595, 5034 and 6856, indexed by enum pop3_verb. */
static const unsigned fuzz_pop3_min[POP3_VERB_COUNT] = {
    [POP3_VERB_USER] = 1, [POP3_VERB_PASS] = 1, [POP3_VERB_APOP] = 2,
    [POP3_VERB_RETR] = 1, [POP3_VERB_DELE] = 1, [POP3_VERB_TOP] = 2,
};
static const unsigned fuzz_pop3_max[POP3_VERB_COUNT] = {
    [POP3_VERB_USER] = 1, [POP3_VERB_PASS] = 1, [POP3_VERB_APOP] = 2,
    [POP3_VERB_AUTH] = 2, [POP3_VERB_LIST] = 1, [POP3_VERB_RETR] = 1,
    [POP3_VERB_DELE] = 1, [POP3_VERB_TOP] = 2,  [POP3_VERB_UIDL] = 1,
};

static const char *const fuzz_pop3_errors[] = {
    "Unknown command",
    "Missing argument",
    "Invalid arguments",
    "Argument too long",
    "Invalid characters in command",
    "Syntax: PASS <password>",
};

static bool fuzz_pop3_blank(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return false;
	return true;
}

static void fuzz_pop3_check_ok(const uint8_t *data, size_t size, const struct pop3_command *cmd)
{
	ASSERT(cmd->verb > POP3_VERB_UNKNOWN && cmd->verb < POP3_VERB_COUNT);
	const char *name = pop3_parser_verb_name(cmd->verb);
	size_t nlen = strlen(name);
	ASSERT(strcmp(name, "UNKNOWN") != 0);
	ASSERT(cmd->argc >= fuzz_pop3_min[cmd->verb] && cmd->argc <= fuzz_pop3_max[cmd->verb]);
	for (size_t i = 0; i < size; i++)
		ASSERT(data[i] != '\0' && data[i] != '\r' && data[i] != '\n');
	ASSERT(size >= nlen && strncasecmp((const char *)data, name, nlen) == 0);
	for (unsigned i = cmd->argc; i < POP3_ARGS_MAX; i++)
		ASSERT(cmd->argv[i] == NULL);
	size_t pos = nlen;
	if (cmd->verb == POP3_VERB_PASS) {
		/* The password is what follows "PASS "; at most trailing blanks are left out. */
		size_t plen = strlen(cmd->argv[0]);
		ASSERT(plen >= 1 && size >= nlen + 1 + plen && data[nlen] == ' ');
		ASSERT(memcmp(data + nlen + 1, cmd->argv[0], plen) == 0);
		ASSERT(fuzz_pop3_blank(data + nlen + 1 + plen, size - nlen - 1 - plen));
		return;
	}
	/* Everything else rebuilds as NAME (SP arg)* plus trailing blanks. */
	for (unsigned i = 0; i < cmd->argc; i++) {
		const char *a = cmd->argv[i];
		size_t alen = strlen(a);
		ASSERT(alen >= 1);
		ASSERT(alen <= POP3_ARG_MAX || (cmd->verb == POP3_VERB_AUTH && i == 1));
		ASSERT(strchr(a, ' ') == NULL);
		ASSERT(pos < size && data[pos] == ' ');
		ASSERT(size - pos - 1 >= alen && memcmp(data + pos + 1, a, alen) == 0);
		pos += 1 + alen;
	}
	ASSERT(fuzz_pop3_blank(data + pos, size - pos));
}

/* Reference for pop3_parser_number: digits only, 1..UINT32_MAX. */
static void fuzz_pop3_number(const char *s)
{
	bool valid = *s != '\0';
	uint64_t v = 0;
	for (const char *p = s; *p != '\0' && valid; p++) {
		if (*p < '0' || *p > '9')
			valid = false;
		else if ((v = v * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
			valid = false;
	}
	valid = valid && v >= 1;
	uint32_t n = 0xdeadbeef;
	int r = pop3_parser_number(s, &n);
	ASSERT((r == 0) == valid);
	ASSERT(r == 0 ? n == v : n == 0xdeadbeef);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *arena = arena_new(4096);
	struct pop3_command cmd;
	const char *error = NULL;
	if (pop3_parser_parse(arena, (const char *)data, size, &cmd, &error) == 0) {
		fuzz_pop3_check_ok(data, size, &cmd);
	} else {
		bool known = false;
		ASSERT(error != NULL);
		for (size_t i = 0; i < sizeof(fuzz_pop3_errors) / sizeof(fuzz_pop3_errors[0]); i++)
			known = known || strcmp(error, fuzz_pop3_errors[i]) == 0;
		ASSERT(known);
	}
	arena_free(&arena);
	if (size <= 64) {
		char s[65];
		memcpy(s, data, size);
		s[size] = '\0';
		fuzz_pop3_number(s);
	}
	return 0;
}
