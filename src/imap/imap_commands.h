/* The IMAP command handlers (cmd_*.c) and what they share. */
#ifndef POSTHORN_IMAP_IMAP_COMMANDS_H
#define POSTHORN_IMAP_IMAP_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_session.h"

/* One command being executed. Strings live in the session's command arena. */
struct imap_cmd {
	struct imap_session *s;
	const char *tag;
	const char *name; /* "FETCH", "UID FETCH" ... */
	const struct imap_arg *args;
	bool uid; /* the UID form */
};

/* astring (atom, quoted, literal without NUL, or NIL taken as text). */
bool imap_commands_astring(const struct imap_arg *arg, const char **str_r);
/* The mailbox name a client sent, as UTF-8 (modified UTF-7 decoded unless the session
 * enabled UTF8=ACCEPT or IMAP4rev2); NULL when invalid. In the command arena. */
const char *imap_commands_mailbox_name(struct imap_session *s, const char *name);

/* A mod-sequence from the client (RFC 7162 §7): mod-sequence-value (1 .. 2^63 - 1), or
 * mod-sequence-valzer (0 too) when zero_ok; an atom of digits, checked before every digit.
 * false when it is none. */
bool imap_commands_modseq(const struct imap_arg *arg, bool zero_ok, uint64_t *modseq_r);

/* ---- shared by STORE, COPY/MOVE, EXPUNGE and APPEND (defined in cmd_store.c) ---- */
/* Parse flags (RFC 9051 §9 flag): the EOL-terminated atoms of a flag list or of STORE's
 * space-separated form. System flags go to *flags_r (STORE_FLAG_*), keywords to a new array
 * in arena (pointers into the arguments). -1 when an entry is not an atom, is \Recent or an
 * unknown system flag, or is not a valid keyword (the caller answers BAD). */
int cmd_store_parse_flags(struct arena *arena, const struct imap_arg *args, unsigned *flags_r,
                          const char ***keywords_r, size_t *count_r);
/* Append "\Seen \Flagged kw ..." (system flags, then the space-separated keywords, which
 * may be NULL) to b. */
void cmd_store_flags_text(struct buf *b, unsigned flags, const char *keywords);
/* Index of uid in the session's view (sorted by UID), or -1. */
long cmd_store_view_find(const struct imap_session *s, uint32_t uid);
/* The UIDs of the view named by the set in arg (UIDs for the UID forms, else sequence
 * numbers), ascending, malloc'd (NULL when none). -1 after answering BAD: not a set, or a
 * sequence number beyond the mailbox. */
int cmd_store_set_uids(struct imap_cmd *cmd, const struct imap_arg *arg, uint32_t **uids_r,
                       size_t *count_r);

void cmd_capability(struct imap_cmd *cmd);
void cmd_noop(struct imap_cmd *cmd);
void cmd_logout(struct imap_cmd *cmd);
void cmd_id(struct imap_cmd *cmd);
void cmd_enable(struct imap_cmd *cmd);
void cmd_namespace(struct imap_cmd *cmd);
void cmd_starttls(struct imap_cmd *cmd);
void cmd_login(struct imap_cmd *cmd);
void cmd_authenticate(struct imap_cmd *cmd);
void cmd_unauthenticate(struct imap_cmd *cmd); /* RFC 8437, cmd_login.c */
void cmd_select(struct imap_cmd *cmd);
void cmd_close(struct imap_cmd *cmd);
void cmd_idle(struct imap_cmd *cmd);
void cmd_fetch(struct imap_cmd *cmd);
void cmd_list(struct imap_cmd *cmd); /* LIST, LSUB */
void cmd_create(struct imap_cmd *cmd);
void cmd_delete(struct imap_cmd *cmd);
void cmd_rename(struct imap_cmd *cmd);
void cmd_subscribe(struct imap_cmd *cmd); /* SUBSCRIBE, UNSUBSCRIBE */
void cmd_status(struct imap_cmd *cmd);
void cmd_store(struct imap_cmd *cmd);   /* STORE, UID STORE */
void cmd_expunge(struct imap_cmd *cmd); /* EXPUNGE, UID EXPUNGE */
void cmd_copy(struct imap_cmd *cmd);    /* COPY, MOVE, UID COPY, UID MOVE */
void cmd_append(struct imap_cmd *cmd);
void cmd_replace(struct imap_cmd *cmd);      /* REPLACE, UID REPLACE (RFC 8508), cmd_append.c */
void cmd_search(struct imap_cmd *cmd);       /* SEARCH, UID SEARCH */
void cmd_compress(struct imap_cmd *cmd);     /* RFC 4978, cmd_compress.c */
void cmd_getquotaroot(struct imap_cmd *cmd); /* RFC 9208, cmd_quota.c */
void cmd_getquota(struct imap_cmd *cmd);
void cmd_setquota(struct imap_cmd *cmd);
/* URLAUTH (RFC 4467), cmd_urlauth.c */
void cmd_genurlauth(struct imap_cmd *cmd);
void cmd_urlfetch(struct imap_cmd *cmd);
void cmd_resetkey(struct imap_cmd *cmd);
/* cmd_metadata.c */
void cmd_getmetadata(struct imap_cmd *cmd);
/* cmd_acl.c (RFC 4314) */
void cmd_myrights(struct imap_cmd *cmd);
void cmd_listrights(struct imap_cmd *cmd);
void cmd_getacl(struct imap_cmd *cmd);
void cmd_setacl(struct imap_cmd *cmd);
void cmd_deleteacl(struct imap_cmd *cmd);
void cmd_setmetadata(struct imap_cmd *cmd);

/* "* ESEARCH (TAG tag) [UID] MIN MAX COUNT ALL" as ret asks (IMAP_SEARCH_RETURN_*), of the
 * result numbers nums[0..n) in answer order (RFC 4731, RFC 5267 §3); cmd_search.c. */
int cmd_esearch_head(struct buf *b, const char *tag, bool uid, unsigned ret, const uint32_t *nums,
                     size_t n);

/* ---- a message's octets for SEARCH, SORT and THREAD (cmd_msg_load.c) ---- */
/* The octets of an opened message (fd, closed here): all of them mapped, or (header_only)
 * at least its header section read. Release with cmd_msg_unload(). */
void cmd_msg_load(int fd, uint64_t size, bool header_only, unsigned char **data_r, size_t *len_r,
                  bool *mapped_r);
void cmd_msg_unload(unsigned char *data, size_t len, bool mapped);
/* View entry i (0-based) as imap_search_match() takes it. */
struct imap_search_msg cmd_msg_search_msg(const struct imap_session *s, uint32_t i);

/* The saved search result "$" (RFC 5182; RFC 9051 §6.4.4.1), defined in cmd_search.c. */
/* Empty it and free its memory: SELECT, EXAMINE, CLOSE, UNSELECT and the end of the session
 * (imap_session_unselect()) must call it. */
void cmd_search_saved_reset(struct imap_session *s);
/* True if the message with this UID is in the saved result. Commands that take a sequence
 * set use it when imap_seqset_is_saved(): "$" names the same messages in the UID and the
 * sequence-number forms. */
bool cmd_search_saved_contains(const struct imap_session *s, uint32_t uid);
/* The saved result as UIDs, ascending (NULL and 0 when empty): for SORT and THREAD. */
void cmd_search_saved_get(const struct imap_session *s, const uint32_t **uids_r, size_t *count_r);
/* Off the loop (a store read): fill the index's answers for search's header keys
 * (imap_search_hdr; a key the store cannot answer is left to the message files). */
struct imap_search;
void cmd_search_hdrs_read(struct imap_session *s, struct imap_search *search);
/* NOTIFY (RFC 5465), cmd_notify.c. */
void cmd_notify(struct imap_cmd *cmd);
/* End the session's NOTIFY, if any (NOTIFY NONE, a new NOTIFY SET, UNAUTHENTICATE, the end
 * of the session): its watch is removed before this returns. */
void cmd_notify_free(struct imap_session *s);
/* Send what NOTIFY owes. Only when no command is running and none is half read (between
 * commands) or in IDLE (imap_session.c decides); it may start a store read or a FETCH
 * step. */
void cmd_notify_deliver(struct imap_session *s);
/* Does NOTIFY report the selected mailbox's changes itself ((SELECTED ...) with message
 * events)? Then IDLE leaves them to cmd_notify_deliver(). */
bool cmd_notify_owns_selected(const struct imap_session *s);
/* NOTIFY MessageNew's fetch-att list (cmd_fetch.c): true when FETCH takes every atom. */
bool cmd_fetch_atts_valid(const char *const *atts, size_t count);
/* "* n FETCH (...)" of those items for sequence numbers from..to (inclusive) of the view,
 * untagged only (no tagged answer), as a long command's steps (imap_session_run). Items
 * that would set \Seen are sent as their .PEEK forms. */
void cmd_fetch_untagged(struct imap_session *s, const char *const *atts, size_t count,
                        uint32_t from, uint32_t to);
/* SORT, UID SORT (RFC 5256, RFC 5957, ESORT RFC 5267) and THREAD, UID THREAD: cmd_sort.c. */
void cmd_sort(struct imap_cmd *cmd);
void cmd_thread(struct imap_cmd *cmd);

/* Shared by LIST (LIST-STATUS) and STATUS, defined in cmd_status.c. */
/* Bits for the status items of a list like (MESSAGES SIZE ...); 0 = BAD. */
unsigned cmd_status_items(const struct imap_arg *list);
/* Do the items ask for HIGHESTMODSEQ (a CONDSTORE enabling command, RFC 7162 §3.1)? */
bool cmd_status_items_modseq(unsigned items);
/* Send "* STATUS name (items)" from st (store_mailbox_stats(), read before); 1 sent, -1
 * error. */
int cmd_status_send(struct imap_session *s, const char *name, unsigned items,
                    const struct store_mailbox_stats *st);
/* NOTIFY's STATUS of a mailbox (RFC 5465 §5.2-5.4): MESSAGES UIDNEXT UIDVALIDITY UNSEEN,
 * and HIGHESTMODSEQ with modseq (FlagChange). 1 sent, -1 error. */
int cmd_status_send_notify(struct imap_session *s, const char *name, bool modseq,
                           const struct store_mailbox_stats *st);
/* Append a UTF-8 mailbox name as a quoted string: modified UTF-7 unless UTF-8 is enabled. */
void cmd_status_mailbox_name(struct imap_session *s, struct buf *out, const char *name);

#endif
