/* STATUS (RFC 9051 §6.3.11, STATUS=SIZE RFC 8438).
 * Placeholder: not built yet. */
#include "imap/imap_commands.h"

#include "core/banned.h"

void cmd_status(struct imap_cmd *cmd)
{
	imap_tagged(cmd->s, cmd->tag, "NO", "[CANNOT] %s is not implemented yet", cmd->name);
}
