/* APPEND (RFC 9051 §6.3.12, MULTIAPPEND RFC 3502, APPENDUID RFC 4315).
 * Placeholder: not built yet. */
#include "imap/imap_commands.h"

#include "core/banned.h"

void cmd_append(struct imap_cmd *cmd)
{
	imap_tagged(cmd->s, cmd->tag, "NO", "[CANNOT] %s is not implemented yet", cmd->name);
}
