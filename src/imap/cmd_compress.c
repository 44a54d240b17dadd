/* COMPRESS (RFC 4978 §3): DEFLATE is the one mechanism. The tagged OK goes uncompressed,
 * everything after it (both ways) is compressed; net/conn does the work. Valid once logged
 * in (the dispatcher answers BAD before), as the RFC's examples and Dovecot do: nothing an
 * attacker sends before authentication is compressed alongside secrets. */
#include "imap/imap_commands.h"

#include <strings.h>

#include "core/banned.h"

void cmd_compress(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	if (a[0].type != IMAP_ARG_ATOM || a[1].type != IMAP_ARG_EOL) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: COMPRESS mechanism");
		return;
	}
	if (strcasecmp(a[0].str, "DEFLATE") != 0) {
		imap_tagged(s, cmd->tag, "BAD", "Unknown compression mechanism");
		return;
	}
	if (conn_is_compressed(s->conn)) {
		imap_tagged(s, cmd->tag, "NO", "[COMPRESSIONACTIVE] DEFLATE is already active");
		return;
	}
	imap_tagged(s, cmd->tag, "OK", "DEFLATE active");
	/* §3: compression starts right after the CRLF of the tagged OK */
	if (conn_start_compress(s->conn) < 0)
		imap_session_close(s, "[UNAVAILABLE] Compression failed");
}
