/* IMAP command parser (see imap_parser.h). A command is read line by line; the arguments of
 * each open parenthesised list are collected in a growable vector per nesting level and
 * copied into the arena when the list closes, so a command split by literals resumes where
 * it stopped. Every limit is checked before the memory it guards is allocated. */
#include "imap/imap_parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* Static error texts for BAD replies. */
static const char ERR_EMPTY[] = "Empty command line";
static const char ERR_TAG[] = "Invalid tag";
static const char ERR_NUL[] = "NUL octet in command";
static const char ERR_NO_COMMAND[] = "Missing command";
static const char ERR_COMMAND[] = "Invalid command name";
static const char ERR_UID[] = "Missing command after UID";
static const char ERR_TOO_LONG[] = "Command line too long";
static const char ERR_TOO_MANY[] = "Too many arguments";
static const char ERR_TOO_DEEP[] = "Too deeply nested parentheses";
static const char ERR_SPACE[] = "Expected space between arguments";
static const char ERR_EXTRA_SPACE[] = "Unexpected space";
static const char ERR_CLOSE[] = "Unexpected ')'";
static const char ERR_OPEN[] = "Missing ')'";
static const char ERR_CHAR[] = "Invalid character in atom";
static const char ERR_QUOTE_END[] = "Missing '\"'";
static const char ERR_QUOTE_CHAR[] = "CR or LF in quoted string";
static const char ERR_ESCAPE[] = "Invalid escape in quoted string";
static const char ERR_LITERAL[] = "Invalid literal size";
static const char ERR_LITERAL_EOL[] = "Literal announcement must end the line";
static const char ERR_LITERAL_NUL[] = "NUL octet in literal";
static const char ERR_LITERAL_MISSING[] = "Literal octets missing";
static const char ERR_SECTION[] = "Invalid section in fetch item";

/* RFC 9051 §9 number64: 0 to 2^63 - 1. */
#define IMAP_PARSER_NUMBER64_MAX ((uint64_t)INT64_MAX)
/* A level vector larger than this is freed at reset rather than kept for reuse. */
#define IMAP_PARSER_KEEP_CAP 64

enum imap_parser_state {
	IMAP_PARSER_STATE_START,    /* expecting a command's first line */
	IMAP_PARSER_STATE_LITERAL,  /* a literal was announced; its octets are due */
	IMAP_PARSER_STATE_CONTINUE, /* the next line continues the command */
	IMAP_PARSER_STATE_DONE,     /* 1 was returned */
	IMAP_PARSER_STATE_FAILED    /* -1 was returned */
};

/* Arguments of one nesting level, always EOL-terminated (cap > count). */
struct imap_parser_level {
	struct imap_arg *args;
	size_t count, cap;
};

struct imap_parser {
	struct arena *arena;
	struct imap_parser_limits limits;
	enum imap_parser_state state;
	const char *tag, *command;
	const struct imap_arg *args;      /* complete command, in the arena */
	struct imap_parser_level *levels; /* [0] top level, [depth] innermost open list */
	unsigned levels_cap, depth;
	size_t line_total;       /* command text octets so far */
	unsigned arg_count;      /* arguments so far */
	uint64_t literal_mem;    /* in-memory literal octets so far */
	struct imap_literal lit; /* the pending literal (state LITERAL) */
	uint64_t lit_received;
	unsigned char *lit_data;
	/* First error of a command being discarded up to its end (see imap_parser.h). */
	const char *error;
};

/* One line being parsed. */
struct imap_parser_line {
	const char *s;
	size_t len, pos;
};

static const struct imap_arg imap_parser_eol = {.type = IMAP_ARG_EOL};

/* ATOM-CHAR of RFC 9051 §9: CHAR except atom-specials. Used for command names. */
static bool imap_parser_is_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* Characters accepted in argument atoms: ATOM-CHAR plus '%' '*' (LIST patterns, sequence
 * sets), ']' (ASTRING-CHAR) and '\' (flags such as \Seen). */
static bool imap_parser_is_arg_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){\"", c) == NULL;
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool imap_parser_is_tag_char(unsigned char c)
{
	return c != '+' && (c == ']' || imap_parser_is_atom_char(c));
}

static bool imap_parser_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal s[0..n) (n >= 1, digits only) into *n_r, checking overflow before every digit.
 * Returns 0, -1 above max. */
static int imap_parser_number(const char *s, size_t n, uint64_t max, uint64_t *n_r)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t digit = (uint64_t)(s[i] - '0');
		if (v > (max - digit) / 10)
			return -1;
		v = v * 10 + digit;
	}
	*n_r = v;
	return 0;
}

static void imap_parser_limits_fill(struct imap_parser_limits *l)
{
	if (l->line_max == 0)
		l->line_max = IMAP_PARSER_DEFAULT_LINE_MAX;
	if (l->literal_max == 0)
		l->literal_max = IMAP_PARSER_DEFAULT_LITERAL_MAX;
	if (l->depth_max == 0)
		l->depth_max = IMAP_PARSER_DEFAULT_DEPTH_MAX;
	if (l->args_max == 0)
		l->args_max = IMAP_PARSER_DEFAULT_ARGS_MAX;
	if (l->literal_total_max == 0) {
		l->literal_total_max =
		    l->literal_max > UINT64_MAX / 4 ? UINT64_MAX : l->literal_max * 4;
	}
}

struct imap_parser *imap_parser_new(struct arena *arena, const struct imap_parser_limits *limits)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));
	p->arena = arena;
	if (limits != NULL)
		p->limits = *limits;
	imap_parser_limits_fill(&p->limits);
	p->levels_cap = 4;
	p->levels = xcalloc(p->levels_cap, sizeof(*p->levels));
	return p;
}

void imap_parser_free(struct imap_parser **parser)
{
	struct imap_parser *p = *parser;
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->levels_cap; i++)
		free(p->levels[i].args);
	free(p->levels);
	free(p);
	*parser = NULL;
}

void imap_parser_reset(struct imap_parser *p)
{
	for (unsigned i = 0; i < p->levels_cap; i++) {
		struct imap_parser_level *level = &p->levels[i];
		if (level->cap > IMAP_PARSER_KEEP_CAP) {
			free(level->args);
			level->args = NULL;
			level->cap = 0;
		}
		level->count = 0;
		if (level->args != NULL)
			level->args[0] = imap_parser_eol;
	}
	p->state = IMAP_PARSER_STATE_START;
	p->tag = NULL;
	p->command = NULL;
	p->args = NULL;
	p->depth = 0;
	p->line_total = 0;
	p->arg_count = 0;
	p->literal_mem = 0;
	memset(&p->lit, 0, sizeof(p->lit));
	p->lit_received = 0;
	p->lit_data = NULL;
	p->error = NULL;
}

/* Count one more argument against args_max. */
static int imap_parser_count_arg(struct imap_parser *p, const char **error_r)
{
	if (p->arg_count >= p->limits.args_max) {
		*error_r = ERR_TOO_MANY;
		return -1;
	}
	p->arg_count++;
	return 0;
}

/* Append arg to the innermost open level, keeping it EOL-terminated. */
static void imap_parser_push(struct imap_parser *p, const struct imap_arg *arg)
{
	struct imap_parser_level *level = &p->levels[p->depth];
	if (level->count + 2 > level->cap) {
		size_t cap = level->cap < 8 ? 8 : level->cap * 2;
		level->args = xrealloc(level->args, cap * sizeof(*level->args));
		level->cap = cap;
	}
	level->args[level->count++] = *arg;
	level->args[level->count] = imap_parser_eol;
}

/* Whether a literal of size octets may not be kept in memory (limit or budget). */
static bool imap_parser_literal_too_large(const struct imap_parser *p, uint64_t size)
{
	return size > p->limits.literal_max || size > p->limits.literal_total_max - p->literal_mem;
}

/* If the line ends with a non-synchronizing literal announcement "{N+}" or "~{N+}", describe
 * it in *lit and return true. Only the text at the end is looked at: this is for skipping
 * the rest of a command that already failed. */
static bool imap_parser_trailing_nonsync(const struct imap_parser *p, const char *line, size_t len,
                                         struct imap_literal *lit)
{
	if (len < 4 || line[len - 1] != '}' || line[len - 2] != '+')
		return false;
	size_t end = len - 2, i = end;
	while (i > 0 && imap_parser_is_digit(line[i - 1]))
		i--;
	if (i == end || i == 0 || line[i - 1] != '{')
		return false;
	uint64_t size;
	if (imap_parser_number(line + i, end - i, IMAP_PARSER_NUMBER64_MAX, &size) < 0)
		return false;
	memset(lit, 0, sizeof(*lit));
	lit->size = size;
	lit->sync = false;
	lit->binary = i >= 2 && line[i - 2] == '~';
	lit->too_large = imap_parser_literal_too_large(p, size);
	return true;
}

/* The command failed in line: either discard its trailing non-sync literal and the rest of
 * the command first (returns 0), or report the error now (returns -1). */
static int imap_parser_fail(struct imap_parser *p, const char *line, size_t len, const char *error,
                            struct imap_literal *literal_r, const char **error_r)
{
	if (p->error == NULL)
		p->error = error;
	if (imap_parser_trailing_nonsync(p, line, len, literal_r)) {
		p->lit = *literal_r;
		p->lit_received = 0;
		p->lit_data = NULL;
		p->state = IMAP_PARSER_STATE_LITERAL;
		return 0;
	}
	memset(literal_r, 0, sizeof(*literal_r));
	p->state = IMAP_PARSER_STATE_FAILED;
	*error_r = p->error;
	return -1;
}

/* Upper-cased arena copy of s[0..n). */
static char *imap_parser_upper_dup(struct arena *arena, const char *s, size_t n)
{
	char *d = arena_strndup(arena, s, n);
	for (size_t i = 0; i < n; i++) {
		if (d[i] >= 'a' && d[i] <= 'z')
			d[i] = (char)(d[i] - 'a' + 'A');
	}
	return d;
}

/* Length of the command-name atom at l->pos (0 if none), checking what follows it. */
static size_t imap_parser_command_len(const struct imap_parser_line *l)
{
	size_t i = l->pos;
	while (i < l->len && imap_parser_is_atom_char((unsigned char)l->s[i]))
		i++;
	if (i < l->len && l->s[i] != ' ')
		return 0;
	return i - l->pos;
}

/* The command name after the tag, with the UID subcommand joined ("UID FETCH"). */
static int imap_parser_read_command(struct imap_parser *p, struct imap_parser_line *l,
                                    const char **error_r)
{
	size_t n = imap_parser_command_len(l);
	if (n == 0) {
		*error_r = l->pos == l->len ? ERR_NO_COMMAND : ERR_COMMAND;
		return -1;
	}
	const char *name = l->s + l->pos;
	l->pos += n;
	if (n != 3 || strncasecmp(name, "UID", 3) != 0) {
		p->command = imap_parser_upper_dup(p->arena, name, n);
		return 0;
	}
	if (l->pos == l->len) {
		*error_r = ERR_UID;
		return -1;
	}
	l->pos++;
	size_t sub = imap_parser_command_len(l);
	if (sub == 0) {
		*error_r = l->pos == l->len ? ERR_UID : ERR_COMMAND;
		return -1;
	}
	/* "UID" SP subcommand, copied as one run of the line then upper-cased. */
	p->command = imap_parser_upper_dup(p->arena, name, 4 + sub);
	l->pos += sub;
	return 0;
}

/* tag SP command: the start of a command's first line. */
static int imap_parser_read_head(struct imap_parser *p, struct imap_parser_line *l,
                                 const char **error_r)
{
	if (l->len == 0) {
		*error_r = ERR_EMPTY;
		return -1;
	}
	size_t i = 0;
	while (i < l->len && imap_parser_is_tag_char((unsigned char)l->s[i]))
		i++;
	if (i == 0 || (i < l->len && l->s[i] != ' ')) {
		*error_r = ERR_TAG;
		return -1;
	}
	p->tag = arena_strndup(p->arena, l->s, i);
	if (memchr(l->s, '\0', l->len) != NULL) {
		*error_r = ERR_NUL;
		return -1;
	}
	if (i == l->len) {
		*error_r = ERR_NO_COMMAND;
		return -1;
	}
	l->pos = i + 1;
	return imap_parser_read_command(p, l, error_r);
}

/* For a first line that is too long: keep its tag if one fits in line_max, so the BAD
 * reply can be tagged. */
static void imap_parser_salvage_tag(struct imap_parser *p, const char *line, size_t len)
{
	size_t max = len < p->limits.line_max ? len : p->limits.line_max;
	size_t i = 0;
	while (i < max && imap_parser_is_tag_char((unsigned char)line[i]))
		i++;
	if (i > 0 && i < max && line[i] == ' ')
		p->tag = arena_strndup(p->arena, line, i);
}

/* A quoted string starting at s[*pos] == '"'. Validates it, sets *pos after the closing
 * quote and returns the unescaped length in *len_r. Returns 0 or -1. */
static int imap_parser_scan_quoted(const struct imap_parser_line *l, size_t *pos, size_t *len_r,
                                   const char **error_r)
{
	size_t n = 0;
	for (size_t i = *pos + 1; i < l->len; i++) {
		char c = l->s[i];
		if (c == '"') {
			*pos = i + 1;
			*len_r = n;
			return 0;
		}
		if (c == '\\') {
			/* RFC 9051 §9: only quoted-specials may be escaped. */
			if (i + 1 == l->len || (l->s[i + 1] != '"' && l->s[i + 1] != '\\')) {
				*error_r = ERR_ESCAPE;
				return -1;
			}
			i++;
		} else if (c == '\r' || c == '\n' || c == '\0') {
			*error_r = ERR_QUOTE_CHAR;
			return -1;
		}
		n++;
	}
	*error_r = ERR_QUOTE_END;
	return -1;
}

static int imap_parser_read_quoted(struct imap_parser *p, struct imap_parser_line *l,
                                   const char **error_r)
{
	size_t start = l->pos, n;
	if (imap_parser_scan_quoted(l, &l->pos, &n, error_r) < 0)
		return -1;
	if (imap_parser_count_arg(p, error_r) < 0)
		return -1;
	char *d = arena_alloc(p->arena, n + 1);
	size_t o = 0;
	for (size_t i = start + 1; i < l->pos - 1; i++) {
		if (l->s[i] == '\\')
			i++;
		d[o++] = l->s[i];
	}
	d[o] = '\0';
	struct imap_arg arg = {.type = IMAP_ARG_STRING, .str = d, .len = n};
	imap_parser_push(p, &arg);
	return 0;
}

/* FETCH items whose '[' starts a section that may contain SP and a list (RFC 9051 §9
 * fetch-att: BODY section, BODY.PEEK section, BINARY/BINARY.PEEK section-binary,
 * BINARY.SIZE section-binary). */
static bool imap_parser_is_section_item(const char *s, size_t n)
{
	static const char *const items[] = {"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
	                                    "BINARY.SIZE"};
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		if (strlen(items[i]) == n && strncasecmp(s, items[i], n) == 0)
			return true;
	}
	return false;
}

/* Skip a section "[...]" starting at s[*pos] == '['; *pos ends after the ']'. Allowed
 * inside: printable ASCII and SP, one level of parentheses (header-list), quoted strings
 * (also printable ASCII only). */
static int imap_parser_skip_section(const struct imap_parser_line *l, size_t *pos,
                                    const char **error_r)
{
	bool in_list = false;
	size_t i = *pos + 1;
	while (i < l->len) {
		unsigned char c = (unsigned char)l->s[i];
		if (c == ']' && !in_list) {
			*pos = i + 1;
			return 0;
		}
		if (c == '"') {
			size_t n, start = i;
			if (imap_parser_scan_quoted(l, &i, &n, error_r) < 0)
				return -1;
			/* Header field names are printable ASCII (RFC 5322 §3.6.8). */
			for (size_t j = start; j < i; j++) {
				if ((unsigned char)l->s[j] < 0x20 ||
				    (unsigned char)l->s[j] >= 0x7f) {
					*error_r = ERR_SECTION;
					return -1;
				}
			}
			continue;
		}
		if (c == '(' && !in_list) {
			in_list = true;
		} else if (c == ')' && in_list) {
			in_list = false;
		} else if (c < 0x20 || c >= 0x7f || strchr("[{()\\", c) != NULL) {
			*error_r = ERR_SECTION;
			return -1;
		}
		i++;
	}
	*error_r = ERR_SECTION;
	return -1;
}

static int imap_parser_read_atom(struct imap_parser *p, struct imap_parser_line *l,
                                 const char **error_r)
{
	size_t start = l->pos, i = l->pos;
	while (i < l->len && imap_parser_is_arg_atom_char((unsigned char)l->s[i])) {
		if (l->s[i] == '[' && imap_parser_is_section_item(l->s + start, i - start)) {
			if (imap_parser_skip_section(l, &i, error_r) < 0)
				return -1;
		} else {
			i++;
		}
	}
	if (i == start || (i < l->len && l->s[i] != ' ' && l->s[i] != ')' && l->s[i] != '(' &&
	                   l->s[i] != '"' && l->s[i] != '{')) {
		*error_r = ERR_CHAR;
		return -1;
	}
	if (imap_parser_count_arg(p, error_r) < 0)
		return -1;
	size_t n = i - start;
	struct imap_arg arg = {.type = IMAP_ARG_ATOM, .len = n};
	arg.str = arena_strndup(p->arena, l->s + start, n);
	if (n == 3 && strncasecmp(arg.str, "NIL", 3) == 0)
		arg.type = IMAP_ARG_NIL;
	imap_parser_push(p, &arg);
	l->pos = i;
	return 0;
}

/* A literal announcement "{N}", "{N+}", "~{N}" or "~{N+}" that must end the line. */
static int imap_parser_read_literal(struct imap_parser *p, struct imap_parser_line *l,
                                    struct imap_literal *literal_r, const char **error_r)
{
	bool binary = l->s[l->pos] == '~';
	size_t i = l->pos + (binary ? 2 : 1), start = i;
	while (i < l->len && imap_parser_is_digit(l->s[i]))
		i++;
	uint64_t size;
	if (i == start ||
	    imap_parser_number(l->s + start, i - start, IMAP_PARSER_NUMBER64_MAX, &size) < 0) {
		*error_r = ERR_LITERAL;
		return -1;
	}
	bool sync = true;
	if (i < l->len && l->s[i] == '+') {
		sync = false;
		i++;
	}
	if (i == l->len || l->s[i] != '}') {
		*error_r = ERR_LITERAL;
		return -1;
	}
	if (i + 1 != l->len) {
		*error_r = ERR_LITERAL_EOL;
		return -1;
	}
	if (imap_parser_count_arg(p, error_r) < 0)
		return -1;
	l->pos = l->len;
	memset(&p->lit, 0, sizeof(p->lit));
	p->lit.size = size;
	p->lit.sync = sync;
	p->lit.binary = binary;
	p->lit.too_large = imap_parser_literal_too_large(p, size);
	p->lit_received = 0;
	p->lit_data = NULL;
	p->state = IMAP_PARSER_STATE_LITERAL;
	*literal_r = p->lit;
	return 0;
}

static int imap_parser_open_list(struct imap_parser *p, const char **error_r)
{
	if (p->depth >= p->limits.depth_max) {
		*error_r = ERR_TOO_DEEP;
		return -1;
	}
	if (imap_parser_count_arg(p, error_r) < 0)
		return -1;
	if (p->depth + 1 >= p->levels_cap) {
		unsigned cap = p->levels_cap * 2;
		p->levels = xrealloc(p->levels, cap * sizeof(*p->levels));
		memset(p->levels + p->levels_cap, 0, (cap - p->levels_cap) * sizeof(*p->levels));
		p->levels_cap = cap;
	}
	p->depth++;
	p->levels[p->depth].count = 0;
	return 0;
}

/* Copy the children of a level into the arena, EOL-terminated. */
static struct imap_arg *imap_parser_level_copy(struct imap_parser *p,
                                               const struct imap_parser_level *level)
{
	struct imap_arg *args = arena_alloc(p->arena, (level->count + 1) * sizeof(*args));
	if (level->count > 0)
		memcpy(args, level->args, level->count * sizeof(*args));
	args[level->count] = imap_parser_eol;
	return args;
}

static int imap_parser_close_list(struct imap_parser *p, const char **error_r)
{
	if (p->depth == 0) {
		*error_r = ERR_CLOSE;
		return -1;
	}
	struct imap_arg arg = {.type = IMAP_ARG_LIST};
	arg.list = imap_parser_level_copy(p, &p->levels[p->depth]);
	p->levels[p->depth].count = 0;
	p->depth--;
	imap_parser_push(p, &arg);
	return 0;
}

/* One argument at l->pos (not SP, '(' or ')'). Returns 1 for a literal announcement (the
 * line is consumed), 0 for any other argument, -1 on error. */
static int imap_parser_read_arg(struct imap_parser *p, struct imap_parser_line *l,
                                struct imap_literal *literal_r, const char **error_r)
{
	char c = l->s[l->pos];
	if (c == '"')
		return imap_parser_read_quoted(p, l, error_r);
	if (c == '{' || (c == '~' && l->pos + 1 < l->len && l->s[l->pos + 1] == '{')) {
		if (imap_parser_read_literal(p, l, literal_r, error_r) < 0)
			return -1;
		return 1;
	}
	return imap_parser_read_atom(p, l, error_r);
}

/* Positions in an argument list: after an argument (SP, ')' or the end may follow), right
 * after '(' (an argument or ')'), after SP (an argument; the end only at the top level). */
enum imap_parser_pos { IMAP_PARSER_AFTER_ARG, IMAP_PARSER_AFTER_OPEN, IMAP_PARSER_AFTER_SP };

/* The end of the line, no literal pending: the command is complete if all lists closed. */
static int imap_parser_finish(struct imap_parser *p, const char **error_r)
{
	if (p->depth > 0) {
		*error_r = ERR_OPEN;
		return -1;
	}
	p->args = imap_parser_level_copy(p, &p->levels[0]);
	p->state = IMAP_PARSER_STATE_DONE;
	return 1;
}

/* Arguments from l->pos to the end of the line. The line starts right after an argument
 * (the command name or a literal). Returns 1 complete, 0 literal announced, -1 error. */
static int imap_parser_read_args(struct imap_parser *p, struct imap_parser_line *l,
                                 struct imap_literal *literal_r, const char **error_r)
{
	enum imap_parser_pos where = IMAP_PARSER_AFTER_ARG;
	while (l->pos < l->len) {
		char c = l->s[l->pos];
		int ret = 0;
		if (where == IMAP_PARSER_AFTER_ARG && c == ' ') {
			where = IMAP_PARSER_AFTER_SP;
			l->pos++;
			continue;
		}
		if (c == ')') {
			if (where == IMAP_PARSER_AFTER_SP) {
				*error_r = ERR_CLOSE;
				return -1;
			}
			ret = imap_parser_close_list(p, error_r);
			l->pos++;
		} else if (where == IMAP_PARSER_AFTER_ARG) {
			*error_r = ERR_SPACE;
			return -1;
		} else if (c == ' ') {
			*error_r = ERR_EXTRA_SPACE;
			return -1;
		} else if (c == '(') {
			ret = imap_parser_open_list(p, error_r);
			l->pos++;
			where = IMAP_PARSER_AFTER_OPEN;
			if (ret < 0)
				return -1;
			continue;
		} else {
			ret = imap_parser_read_arg(p, l, literal_r, error_r);
			if (ret == 1)
				return 0;
		}
		if (ret < 0)
			return -1;
		where = IMAP_PARSER_AFTER_ARG;
	}
	return imap_parser_finish(p, error_r);
}

/* A line of a command that already failed: only a trailing non-sync literal matters. */
static int imap_parser_skip_line(struct imap_parser *p, const char *line, size_t len,
                                 struct imap_literal *literal_r, const char **error_r)
{
	return imap_parser_fail(p, line, len, p->error, literal_r, error_r);
}

int imap_parser_feed_line(struct imap_parser *p, const char *line, size_t len,
                          struct imap_literal *literal_r, const char **error_r)
{
	memset(literal_r, 0, sizeof(*literal_r));
	*error_r = NULL;
	if (p->state == IMAP_PARSER_STATE_DONE || p->state == IMAP_PARSER_STATE_FAILED)
		imap_parser_reset(p);
	if (p->state == IMAP_PARSER_STATE_LITERAL) {
		/* The caller skipped the literal: nothing sensible can follow. */
		if (p->error == NULL)
			p->error = ERR_LITERAL_MISSING;
		p->state = IMAP_PARSER_STATE_FAILED;
		*error_r = p->error;
		return -1;
	}
	if (p->error != NULL)
		return imap_parser_skip_line(p, line, len, literal_r, error_r);

	struct imap_parser_line l = {.s = line, .len = len, .pos = 0};
	const char *error = NULL;
	int ret;
	if (len > p->limits.line_max - p->line_total) {
		error = ERR_TOO_LONG;
		if (p->state == IMAP_PARSER_STATE_START)
			imap_parser_salvage_tag(p, line, len);
	} else if (p->state == IMAP_PARSER_STATE_START) {
		p->line_total += len;
		(void)imap_parser_read_head(p, &l, &error);
	} else {
		p->line_total += len;
		if (memchr(line, '\0', len) != NULL)
			error = ERR_NUL;
	}
	if (error == NULL) {
		ret = imap_parser_read_args(p, &l, literal_r, &error);
		if (ret >= 0) {
			*error_r = NULL;
			return ret;
		}
	}
	return imap_parser_fail(p, line, len, error, literal_r, error_r);
}

int imap_parser_feed_literal(struct imap_parser *p, const unsigned char *data, size_t len)
{
	if (p->state != IMAP_PARSER_STATE_LITERAL || p->lit.too_large ||
	    len > p->lit.size - p->lit_received)
		return -1;
	if (p->error != NULL) {
		/* Discarding the rest of a failed command. */
		p->lit_received += len;
	} else {
		if (p->lit_data == NULL)
			p->lit_data = arena_alloc(p->arena, (size_t)p->lit.size + 1);
		if (len > 0) {
			/* RFC 9051 §9: a literal is *CHAR8 (no NUL); literal8 is *OCTET. */
			if (!p->lit.binary && memchr(data, '\0', len) != NULL)
				p->error = ERR_LITERAL_NUL;
			memcpy(p->lit_data + p->lit_received, data, len);
		}
		p->lit_received += len;
	}
	if (p->lit_received < p->lit.size)
		return 0;
	p->state = IMAP_PARSER_STATE_CONTINUE;
	if (p->error == NULL) {
		p->lit_data[p->lit.size] = '\0';
		struct imap_arg arg = {.type = IMAP_ARG_LITERAL, .len = (size_t)p->lit.size};
		arg.str = (const char *)p->lit_data;
		arg.literal8 = p->lit.binary;
		imap_parser_push(p, &arg);
		p->literal_mem += p->lit.size;
	}
	p->lit_data = NULL;
	return 1;
}

void imap_parser_literal_external(struct imap_parser *p)
{
	ASSERT(p->state == IMAP_PARSER_STATE_LITERAL && p->lit_received == 0);
	p->state = IMAP_PARSER_STATE_CONTINUE;
	if (p->error != NULL)
		return;
	struct imap_arg arg = {.type = IMAP_ARG_LITERAL_EXTERNAL, .len = (size_t)p->lit.size};
	arg.literal8 = p->lit.binary;
	imap_parser_push(p, &arg);
}

const char *imap_parser_tag(const struct imap_parser *p)
{
	return p->tag;
}

const char *imap_parser_command(const struct imap_parser *p)
{
	return p->command;
}

const struct imap_arg *imap_parser_args(const struct imap_parser *p)
{
	return p->state == IMAP_PARSER_STATE_DONE ? p->args : NULL;
}

const struct imap_arg *imap_parser_args_so_far(const struct imap_parser *p)
{
	if (p->state == IMAP_PARSER_STATE_DONE)
		return p->args;
	if (p->levels[0].args == NULL)
		return &imap_parser_eol;
	return p->levels[0].args;
}

size_t imap_parser_arg_count(const struct imap_arg *args)
{
	size_t n = 0;
	while (args[n].type != IMAP_ARG_EOL)
		n++;
	return n;
}

bool imap_parser_arg_is_string(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_STRING ||
	       arg->type == IMAP_ARG_LITERAL;
}

void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *limits)
{
	p->limits = *limits;
	imap_parser_limits_fill(&p->limits);
}

unsigned imap_parser_depth(const struct imap_parser *parser)
{
	return parser->depth;
}
