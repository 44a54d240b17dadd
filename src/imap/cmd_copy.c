/* COPY, MOVE and their UID forms (RFC 9051 §6.4.7-8, RFC 6851, COPYUID of RFC 4315).
 * Placeholder: not built yet. */
#include "imap/imap_commands.h"

#include "core/banned.h"

void cmd_copy(struct imap_cmd *cmd)
{
	imap_tagged(cmd->s, cmd->tag, "NO", "[CANNOT] %s is not implemented yet", cmd->name);
}
