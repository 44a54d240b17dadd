/* Privilege drop (see privdrop.h), in the order OpenSMTPD and Postfix use: groups first,
 * then gid, then uid, then prove that the way back is closed. */
#include "core/privdrop.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/banned.h"

static uid_t privdrop_uid;
static gid_t privdrop_gid;

static int privdrop_chown_cb(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return lchown(path, privdrop_uid, privdrop_gid) == 0 ? 0 : -1;
}

int privdrop_to_user(const char *user, const char *data_dir, const char **error_r)
{
	static char err[256];
	if (geteuid() != 0 || user == NULL || user[0] == '\0')
		return 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, sizeof(err), "user %s does not exist", user);
		*error_r = err;
		return -1;
	}
	if (pw->pw_uid == 0) {
		*error_r = "refusing to run as a user with uid 0";
		return -1;
	}
	/* Start-up only (single thread): the nftw callback needs these. */
	privdrop_uid = pw->pw_uid;
	privdrop_gid = pw->pw_gid;
	if (nftw(data_dir, privdrop_chown_cb, 32, FTW_PHYS) != 0) {
		snprintf(err, sizeof(err), "cannot give %s to %s: %s", data_dir, user,
		         strerror(errno));
		*error_r = err;
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) != 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) {
		snprintf(err, sizeof(err), "cannot drop privileges to %s: %s", user,
		         strerror(errno));
		*error_r = err;
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != pw->pw_uid ||
	    geteuid() != pw->pw_uid || getegid() != pw->pw_gid) {
		*error_r = "privilege drop did not stick";
		return -1;
	}
	if (access(data_dir, R_OK | W_OK | X_OK) != 0) {
		snprintf(err, sizeof(err),
		         "%s is not usable by user %s (check the permissions of its parent "
		         "directories): %s",
		         data_dir, user, strerror(errno));
		*error_r = err;
		return -1;
	}
	return 0;
}
