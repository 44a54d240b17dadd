/* Dropping root after the privileged set-up (binding ports, reading keys). */
#ifndef POSTHORN_CORE_PRIVDROP_H
#define POSTHORN_CORE_PRIVDROP_H

/* When running as root and user is non-empty: give owner of data_dir (recursively) to user,
 * then setgroups + setresgid + setresuid, and verify that root cannot be regained.
 * Returns 0 (also when there was nothing to do), -1 with *error_r. */
int privdrop_to_user(const char *user, const char *data_dir, const char **error_r)
    __attribute__((warn_unused_result));

#endif
