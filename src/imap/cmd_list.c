/* LIST (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258, SPECIAL-USE RFC 6154, LIST-STATUS RFC 5819) and LSUB (RFC 3501 §6.3.9).
 * Placeholder: not built yet. */
#include "imap/imap_commands.h"

#include "core/banned.h"

void cmd_list(struct imap_cmd *cmd)
{
	imap_tagged(cmd->s, cmd->tag, "NO", "[CANNOT] %s is not implemented yet", cmd->name);
}
