/* EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9).
 * Placeholder: not built yet. */
#include "imap/imap_commands.h"

#include "core/banned.h"

void cmd_expunge(struct imap_cmd *cmd)
{
	imap_tagged(cmd->s, cmd->tag, "NO", "[CANNOT] %s is not implemented yet", cmd->name);
}
