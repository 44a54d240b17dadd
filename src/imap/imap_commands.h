/* The IMAP command handlers (cmd_*.c) and what they share. */
#ifndef POSTHORN_IMAP_IMAP_COMMANDS_H
#define POSTHORN_IMAP_IMAP_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "imap/imap_session.h"

/* One command being executed. Strings live in the session's command arena. */
struct imap_cmd {
	struct imap_session *s;
	const char *tag;
	const char *name; /* "FETCH", "UID FETCH" ... */
	const struct imap_arg *args;
	bool uid; /* the UID form */
};

/* astring (atom, quoted, literal without NUL, or NIL taken as text). */
bool imap_commands_astring(const struct imap_arg *arg, const char **str_r);
/* The mailbox name a client sent, as UTF-8 (modified UTF-7 decoded unless the session
 * enabled UTF8=ACCEPT or IMAP4rev2); NULL when invalid. In the command arena. */
const char *imap_commands_mailbox_name(struct imap_session *s, const char *name);

void cmd_capability(struct imap_cmd *cmd);
void cmd_noop(struct imap_cmd *cmd);
void cmd_logout(struct imap_cmd *cmd);
void cmd_id(struct imap_cmd *cmd);
void cmd_enable(struct imap_cmd *cmd);
void cmd_namespace(struct imap_cmd *cmd);
void cmd_starttls(struct imap_cmd *cmd);
void cmd_login(struct imap_cmd *cmd);
void cmd_authenticate(struct imap_cmd *cmd);
void cmd_select(struct imap_cmd *cmd);
void cmd_close(struct imap_cmd *cmd);
void cmd_idle(struct imap_cmd *cmd);
void cmd_fetch(struct imap_cmd *cmd);
void cmd_list(struct imap_cmd *cmd);      /* LIST, LSUB */
void cmd_create(struct imap_cmd *cmd);
void cmd_delete(struct imap_cmd *cmd);
void cmd_rename(struct imap_cmd *cmd);
void cmd_subscribe(struct imap_cmd *cmd); /* SUBSCRIBE, UNSUBSCRIBE */
void cmd_status(struct imap_cmd *cmd);
void cmd_store(struct imap_cmd *cmd);     /* STORE, UID STORE */
void cmd_expunge(struct imap_cmd *cmd);   /* EXPUNGE, UID EXPUNGE */
void cmd_copy(struct imap_cmd *cmd);      /* COPY, MOVE, UID COPY, UID MOVE */
void cmd_append(struct imap_cmd *cmd);

#endif
