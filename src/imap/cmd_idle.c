/* IDLE (RFC 2177, RFC 9051 §6.3.13): "+ idling" until the client sends DONE; meanwhile the
 * store's change bus wakes the session, which reports EXISTS/EXPUNGE/FETCH at once. */
#include "imap/imap_commands.h"

#include <stdlib.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "core/banned.h"

void cmd_idle(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	if (cmd->args[0].type != IMAP_ARG_EOL) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: IDLE");
		return;
	}
	free(s->idle_tag);
	s->idle_tag = xstrdup(cmd->tag);
	s->io = IMAP_IO_IDLE;
	conn_printf(s->conn, "+ idling\r\n");
	imap_session_sync(s, true, NULL, NULL); /* what changed before IDLE, then live (on_wake) */
}

void imap_commands_idle_line(struct imap_session *s, const char *line)
{
	s->io = IMAP_IO_LINE;
	if (strcasecmp(line, "DONE") != 0) {
		imap_tagged(s, s->idle_tag, "BAD", "Expected DONE");
		return;
	}
	imap_tagged(s, s->idle_tag, "OK", "IDLE terminated");
}
