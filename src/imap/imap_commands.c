/* The IMAP command table and dispatcher: the state a command needs (RFC 9051 §6) is checked
 * here, once; handlers in cmd_*.c check their arguments and act. */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <stdint.h>
#include <string.h>

#include "core/log.h"
#include "core/utf7.h"
#include "core/banned.h"

struct imap_command_def {
	const char *name;
	void (*handler)(struct imap_cmd *cmd);
	unsigned states; /* IMAP_CMD_* */
};

enum {
	IMAP_CMD_NOAUTH = 1 << 0, /* not authenticated */
	IMAP_CMD_AUTH = 1 << 1,   /* authenticated */
	IMAP_CMD_SEL = 1 << 2,    /* selected */
	IMAP_CMD_ANY = IMAP_CMD_NOAUTH | IMAP_CMD_AUTH | IMAP_CMD_SEL,
	IMAP_CMD_LOGGED_IN = IMAP_CMD_AUTH | IMAP_CMD_SEL,
};

static const struct imap_command_def imap_commands[] = {
    {"CAPABILITY", cmd_capability, IMAP_CMD_ANY},
    {"NOOP", cmd_noop, IMAP_CMD_ANY},
    {"LOGOUT", cmd_logout, IMAP_CMD_ANY},
    {"ID", cmd_id, IMAP_CMD_ANY},
    {"STARTTLS", cmd_starttls, IMAP_CMD_NOAUTH},
    {"LOGIN", cmd_login, IMAP_CMD_NOAUTH},
    {"AUTHENTICATE", cmd_authenticate, IMAP_CMD_NOAUTH},
    {"UNAUTHENTICATE", cmd_unauthenticate, IMAP_CMD_LOGGED_IN},
    {"ENABLE", cmd_enable, IMAP_CMD_LOGGED_IN},
    {"NAMESPACE", cmd_namespace, IMAP_CMD_LOGGED_IN},
    {"SELECT", cmd_select, IMAP_CMD_LOGGED_IN},
    {"EXAMINE", cmd_select, IMAP_CMD_LOGGED_IN},
    {"IDLE", cmd_idle, IMAP_CMD_LOGGED_IN},
    {"CHECK", cmd_noop, IMAP_CMD_SEL},
    {"CLOSE", cmd_close, IMAP_CMD_SEL},
    {"UNSELECT", cmd_close, IMAP_CMD_SEL},
    {"FETCH", cmd_fetch, IMAP_CMD_SEL},
    {"UID FETCH", cmd_fetch, IMAP_CMD_SEL},
    {"LIST", cmd_list, IMAP_CMD_LOGGED_IN},
    {"LSUB", cmd_list, IMAP_CMD_LOGGED_IN},
    {"CREATE", cmd_create, IMAP_CMD_LOGGED_IN},
    {"DELETE", cmd_delete, IMAP_CMD_LOGGED_IN},
    {"RENAME", cmd_rename, IMAP_CMD_LOGGED_IN},
    {"SUBSCRIBE", cmd_subscribe, IMAP_CMD_LOGGED_IN},
    {"UNSUBSCRIBE", cmd_subscribe, IMAP_CMD_LOGGED_IN},
    {"STATUS", cmd_status, IMAP_CMD_LOGGED_IN},
    {"APPEND", cmd_append, IMAP_CMD_LOGGED_IN},
    {"REPLACE", cmd_replace, IMAP_CMD_SEL},
    {"UID REPLACE", cmd_replace, IMAP_CMD_SEL},
    {"STORE", cmd_store, IMAP_CMD_SEL},
    {"UID STORE", cmd_store, IMAP_CMD_SEL},
    {"EXPUNGE", cmd_expunge, IMAP_CMD_SEL},
    {"UID EXPUNGE", cmd_expunge, IMAP_CMD_SEL},
    {"COPY", cmd_copy, IMAP_CMD_SEL},
    {"UID COPY", cmd_copy, IMAP_CMD_SEL},
    {"MOVE", cmd_copy, IMAP_CMD_SEL},
    {"UID MOVE", cmd_copy, IMAP_CMD_SEL},
    {"SEARCH", cmd_search, IMAP_CMD_SEL},
    {"UID SEARCH", cmd_search, IMAP_CMD_SEL},
    {"COMPRESS", cmd_compress, IMAP_CMD_LOGGED_IN},
    {"SORT", cmd_sort, IMAP_CMD_SEL},
    {"UID SORT", cmd_sort, IMAP_CMD_SEL},
    {"THREAD", cmd_thread, IMAP_CMD_SEL},
    {"UID THREAD", cmd_thread, IMAP_CMD_SEL},
    {"GETQUOTAROOT", cmd_getquotaroot, IMAP_CMD_LOGGED_IN},
    {"GETQUOTA", cmd_getquota, IMAP_CMD_LOGGED_IN},
    {"SETQUOTA", cmd_setquota, IMAP_CMD_LOGGED_IN},
    {"GETMETADATA", cmd_getmetadata, IMAP_CMD_LOGGED_IN},
    {"SETMETADATA", cmd_setmetadata, IMAP_CMD_LOGGED_IN},
    {"MYRIGHTS", cmd_myrights, IMAP_CMD_LOGGED_IN},
    {"LISTRIGHTS", cmd_listrights, IMAP_CMD_LOGGED_IN},
    {"GETACL", cmd_getacl, IMAP_CMD_LOGGED_IN},
    {"SETACL", cmd_setacl, IMAP_CMD_LOGGED_IN},
    {"DELETEACL", cmd_deleteacl, IMAP_CMD_LOGGED_IN},
    {"NOTIFY", cmd_notify, IMAP_CMD_LOGGED_IN},
    {"GENURLAUTH", cmd_genurlauth, IMAP_CMD_LOGGED_IN},
    {"URLFETCH", cmd_urlfetch, IMAP_CMD_LOGGED_IN},
    {"RESETKEY", cmd_resetkey, IMAP_CMD_LOGGED_IN},
};

/* The commands whose non-UID form names messages by number: once UIDONLY is enabled they
 * are BAD [UIDREQUIRED] (RFC 9586 §3). */
static bool imap_commands_takes_seq(const char *name)
{
	static const char *const seq_commands[] = {"FETCH",  "STORE", "COPY",   "MOVE",
	                                           "SEARCH", "SORT",  "THREAD", "REPLACE"};
	for (size_t i = 0; i < sizeof(seq_commands) / sizeof(seq_commands[0]); i++)
		if (strcmp(name, seq_commands[i]) == 0)
			return true;
	return false;
}

void imap_commands_execute(struct imap_session *s)
{
	struct imap_cmd cmd = {
	    .s = s,
	    .tag = imap_parser_tag(s->parser),
	    .name = imap_parser_command(s->parser),
	    .args = imap_parser_args(s->parser),
	};
	const struct imap_command_def *def = NULL;
	for (size_t i = 0; i < sizeof(imap_commands) / sizeof(imap_commands[0]); i++)
		if (strcmp(imap_commands[i].name, cmd.name) == 0)
			def = &imap_commands[i];
	if (def == NULL) {
		imap_tagged(s, cmd.tag, "BAD", "Unknown command");
		return;
	}
	imap_acl_refresh(s); /* a shared mailbox's rights as they are now */
	unsigned state = s->state == IMAP_STATE_NOT_AUTHENTICATED ? IMAP_CMD_NOAUTH
	                 : s->state == IMAP_STATE_SELECTED        ? IMAP_CMD_SEL
	                                                          : IMAP_CMD_AUTH;
	if ((def->states & state) == 0) {
		imap_tagged(s, cmd.tag, "BAD",
		            state == IMAP_CMD_NOAUTH ? "Not logged in"
		            : (def->states & IMAP_CMD_SEL) && !(def->states & IMAP_CMD_AUTH)
		                ? "No mailbox selected"
		                : "Command not valid in this state");
		return;
	}
	cmd.uid = strncmp(cmd.name, "UID ", 4) == 0;
	if (s->uidonly && !cmd.uid && imap_commands_takes_seq(cmd.name)) {
		imap_tagged(s, cmd.tag, "BAD", "[UIDREQUIRED] Message numbers are off (UIDONLY)");
		return;
	}
	def->handler(&cmd);
}

/* ---- argument helpers ---- */

bool imap_commands_astring(const struct imap_arg *arg, const char **str_r)
{
	switch (arg->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_STRING:
	case IMAP_ARG_LITERAL:
	case IMAP_ARG_NIL:
		if (arg->type == IMAP_ARG_LITERAL && strlen(arg->str) != arg->len)
			return false; /* NUL inside */
		*str_r = arg->str;
		return true;
	default:
		return false;
	}
}

bool imap_commands_modseq(const struct imap_arg *arg, bool zero_ok, uint64_t *modseq_r)
{
	if (arg->type != IMAP_ARG_ATOM || arg->str[0] == '\0')
		return false;
	uint64_t v = 0;
	for (const char *c = arg->str; *c != '\0'; c++) {
		if (*c < '0' || *c > '9' || v > ((uint64_t)INT64_MAX - (uint64_t)(*c - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*c - '0');
	}
	if (v == 0 && !zero_ok)
		return false;
	*modseq_r = v;
	return true;
}

/* The mailbox name a client sent, as UTF-8 (modified UTF-7 unless UTF8=ACCEPT/rev2). NULL
 * when it is not valid. In the command arena. */
const char *imap_commands_mailbox_name(struct imap_session *s, const char *name)
{
	if (s->utf8 || s->rev2)
		return name;
	struct buf b;
	buf_init(&b, 4096);
	if (utf7_to_utf8(name, &b) < 0) {
		buf_free(&b);
		return NULL;
	}
	char *out = arena_strdup(s->cmd, buf_cstr(&b));
	buf_free(&b);
	return out;
}
