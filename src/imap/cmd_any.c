/* Commands valid in any state or with no mailbox work: CAPABILITY, NOOP (and CHECK), LOGOUT,
 * ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342). */
#include "imap/imap_commands.h"

#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/banned.h"

void cmd_capability(struct imap_cmd *cmd)
{
	imap_send(cmd->s, "* CAPABILITY %s", imap_session_capabilities(cmd->s));
	imap_tagged(cmd->s, cmd->tag, "OK", "CAPABILITY completed");
}

void cmd_noop(struct imap_cmd *cmd)
{
	/* NOOP and CHECK are how clients poll: report what changed (RFC 9051 §6.1.2). */
	imap_session_sync_ok(cmd->s, true, cmd->tag, "%s completed", cmd->name);
}

void cmd_logout(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	conn_printf(s->conn, "* BYE Logging out\r\n");
	imap_tagged(s, cmd->tag, "OK", "LOGOUT completed");
	imap_session_set_state(s, IMAP_STATE_LOGOUT);
	imap_session_close(s, NULL);
}

void cmd_id(struct imap_cmd *cmd)
{
	/* RFC 2971: the argument is NIL or a list of field/value pairs; we only log it. */
	const struct imap_arg *a = cmd->args;
	if (a[0].type != IMAP_ARG_NIL && a[0].type != IMAP_ARG_LIST) {
		imap_tagged(cmd->s, cmd->tag, "BAD", "Syntax: ID (field value ...) or ID NIL");
		return;
	}
	imap_send(cmd->s, "* ID (\"name\" \"Posthorn\")");
	imap_tagged(cmd->s, cmd->tag, "OK", "ID completed");
}

void cmd_enable(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	if (a[0].type == IMAP_ARG_EOL) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: ENABLE capability ...");
		return;
	}
	char enabled[128] = "";
	bool condstore = false;
	for (; a->type != IMAP_ARG_EOL; a++) {
		if (a->type != IMAP_ARG_ATOM) {
			imap_tagged(s, cmd->tag, "BAD", "Syntax: ENABLE capability ...");
			return;
		}
		/* RFC 5161 §3.1: report only what is newly enabled. */
		if (strcasecmp(a->str, "IMAP4rev2") == 0 && !s->rev2) {
			s->rev2 = true;
			strncat(enabled, " IMAP4rev2", sizeof(enabled) - strlen(enabled) - 1);
		} else if (strcasecmp(a->str, "UTF8=ACCEPT") == 0 && !s->utf8) {
			s->utf8 = true;
			strncat(enabled, " UTF8=ACCEPT", sizeof(enabled) - strlen(enabled) - 1);
		} else if (strcasecmp(a->str, "CONDSTORE") == 0 && !s->condstore && !condstore) {
			condstore = true; /* RFC 7162 §3.1 */
			strncat(enabled, " CONDSTORE", sizeof(enabled) - strlen(enabled) - 1);
		} else if (strcasecmp(a->str, "QRESYNC") == 0 && !s->qresync) {
			/* RFC 7162 §3.2.3: QRESYNC enables CONDSTORE too */
			s->qresync = true;
			condstore = true;
			strncat(enabled, " QRESYNC", sizeof(enabled) - strlen(enabled) - 1);
		} else if (strcasecmp(a->str, "UIDONLY") == 0 && !s->uidonly) {
			s->uidonly = true; /* RFC 9586 §3.1 */
			strncat(enabled, " UIDONLY", sizeof(enabled) - strlen(enabled) - 1);
		}
	}
	imap_send(s, "* ENABLED%s", enabled);
	/* After ENABLED: with a mailbox selected (RFC 5161 forbids that only to clients) it
	 * adds the untagged HIGHESTMODSEQ. */
	if (condstore)
		(void)imap_session_condstore_enable(s);
	imap_tagged(s, cmd->tag, "OK", "ENABLE completed");
}

void cmd_namespace(struct imap_cmd *cmd)
{
	/* The personal namespace and other users' (RFC 2342 §5, RFC 4314: "Shared/owner/mailbox",
	 * imap_acl.h), "/" as the hierarchy delimiter; no namespace shared by all. */
	imap_send(cmd->s, "* NAMESPACE ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL");
	imap_tagged(cmd->s, cmd->tag, "OK", "NAMESPACE completed");
}
