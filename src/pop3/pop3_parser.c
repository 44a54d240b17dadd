/* POP3 command-line parser (see pop3_parser.h). */
#include "pop3/pop3_parser.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

struct pop3_verb_def {
	const char *name;
	enum pop3_verb verb;
	unsigned min_args, max_args;
};

static const struct pop3_verb_def pop3_verbs[] = {
    {"USER", POP3_VERB_USER, 1, 1}, {"PASS", POP3_VERB_PASS, 1, 1}, {"APOP", POP3_VERB_APOP, 2, 2},
    {"AUTH", POP3_VERB_AUTH, 0, 2}, {"STLS", POP3_VERB_STLS, 0, 0}, {"CAPA", POP3_VERB_CAPA, 0, 0},
    {"UTF8", POP3_VERB_UTF8, 0, 0}, {"STAT", POP3_VERB_STAT, 0, 0}, {"LIST", POP3_VERB_LIST, 0, 1},
    {"RETR", POP3_VERB_RETR, 1, 1}, {"DELE", POP3_VERB_DELE, 1, 1}, {"NOOP", POP3_VERB_NOOP, 0, 0},
    {"RSET", POP3_VERB_RSET, 0, 0}, {"TOP", POP3_VERB_TOP, 2, 2},   {"UIDL", POP3_VERB_UIDL, 0, 1},
    {"QUIT", POP3_VERB_QUIT, 0, 0},
};

const char *pop3_parser_verb_name(enum pop3_verb verb)
{
	for (size_t i = 0; i < sizeof(pop3_verbs) / sizeof(pop3_verbs[0]); i++)
		if (pop3_verbs[i].verb == verb)
			return pop3_verbs[i].name;
	return "UNKNOWN";
}

int pop3_parser_number(const char *s, uint32_t *n_r)
{
	uint32_t n = 0;
	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (n > (UINT32_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	if (n == 0)
		return -1;
	*n_r = n;
	return 0;
}

int pop3_parser_parse(struct arena *arena, const char *line, size_t len, struct pop3_command *cmd,
                      const char **error_r)
{
	memset(cmd, 0, sizeof(*cmd));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == '\0' || c == '\r' || c == '\n') {
			*error_r = "Invalid characters in command";
			return -1;
		}
	}
	size_t full_len = len; /* PASS keeps trailing spaces: they may be the password's */
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	size_t vlen = 0;
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	const struct pop3_verb_def *def = NULL;
	for (size_t i = 0; i < sizeof(pop3_verbs) / sizeof(pop3_verbs[0]); i++) {
		if (strlen(pop3_verbs[i].name) == vlen &&
		    strncasecmp(line, pop3_verbs[i].name, vlen) == 0)
			def = &pop3_verbs[i];
	}
	if (def == NULL) {
		*error_r = "Unknown command";
		return -1;
	}
	cmd->verb = def->verb;
	size_t pos = vlen;
	if (def->verb == POP3_VERB_PASS) {
		/* Everything after "PASS " is the password, spaces included. */
		if (pos + 1 >= len) { /* nothing but blanks after PASS */
			*error_r = "Syntax: PASS <password>";
			return -1;
		}
		cmd->argv[0] = arena_strndup(arena, line + pos + 1, full_len - pos - 1);
		cmd->argc = 1;
		return 0;
	}
	while (pos < len) {
		pos++; /* the single space */
		size_t start = pos;
		while (pos < len && line[pos] != ' ')
			pos++;
		size_t alen = pos - start;
		bool long_ok = def->verb == POP3_VERB_AUTH && cmd->argc == 1;
		if (alen == 0 || cmd->argc == def->max_args || (alen > POP3_ARG_MAX && !long_ok)) {
			*error_r = alen > POP3_ARG_MAX ? "Argument too long" : "Invalid arguments";
			return -1;
		}
		cmd->argv[cmd->argc++] = arena_strndup(arena, line + start, alen);
	}
	if (cmd->argc < def->min_args) {
		*error_r = "Missing argument";
		return -1;
	}
	return 0;
}
