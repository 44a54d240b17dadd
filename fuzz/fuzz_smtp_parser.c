/* libFuzzer target for smtp/smtp_parser: parse the input as one command line and check the
 * contract: an accepted command has a known verb and consistent fields; a refused one has a
 * static reply line that starts with a 5xx code and an enhanced status code. */
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "smtp/smtp_parser.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_smtp_check_ok(const struct smtp_command *cmd)
{
	ASSERT(cmd->verb > SMTP_VERB_UNKNOWN && cmd->verb < SMTP_VERB_COUNT);
	ASSERT(cmd->arg != NULL);
	ASSERT(strcmp(smtp_parser_verb_name(cmd->verb), "UNKNOWN") != 0);
	if (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT) {
		ASSERT(cmd->path.local != NULL && cmd->path.domain != NULL);
		ASSERT(!(cmd->verb == SMTP_VERB_RCPT && cmd->path.null));
	} else {
		ASSERT(cmd->path.local == NULL && !cmd->size_set && cmd->auth_param == NULL);
	}
	if (cmd->verb == SMTP_VERB_AUTH) {
		size_t n = strlen(cmd->mechanism);
		ASSERT(n >= 1 && n <= 20);
		for (size_t i = 0; i < n; i++)
			ASSERT(!(cmd->mechanism[i] >= 'a' && cmd->mechanism[i] <= 'z'));
	} else {
		ASSERT(cmd->mechanism == NULL && cmd->initial_response == NULL);
	}
	if (cmd->verb != SMTP_VERB_BDAT)
		ASSERT(cmd->chunk_size == 0);
	if (cmd->verb != SMTP_VERB_BDAT && cmd->verb != SMTP_VERB_BURL) /* both take LAST */
		ASSERT(!cmd->last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *arena = arena_new(4096);
	struct smtp_command cmd;
	const char *error = NULL;
	if (smtp_parser_parse(arena, (const char *)data, size, &cmd, &error) == 0) {
		fuzz_smtp_check_ok(&cmd);
	} else {
		ASSERT(error != NULL && strlen(error) > 10);
		ASSERT(error[0] == '5' && error[3] == ' ' && error[4] == '5' && error[5] == '.');
		ASSERT(cmd.arg != NULL && cmd.path.local == NULL && cmd.mechanism == NULL);
	}
	arena_free(&arena);
	return 0;
}
