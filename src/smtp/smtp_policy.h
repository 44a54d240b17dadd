/* Flood and abuse defence of the SMTP server (issue 12): greylisting of unknown triplets on
 * port 25, per-IP connection and message rates on port 25, the limit of unknown recipients
 * per port 25 session, and per-account submission rates (messages and new recipients per
 * day, as mox). The session calls one hook at each point (connect, MAIL, the RCPT read,
 * the RCPT answer, a delivery); the decisions are pure functions below, unit-tested. */
#ifndef POSTHORN_SMTP_SMTP_POLICY_H
#define POSTHORN_SMTP_SMTP_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store/store.h"

struct smtp_session;

/* What one session keeps (in struct smtp_session). */
struct smtp_policy_state {
	unsigned invalid_rcpts; /* unknown recipients refused in this session (port 25) */
	/* what the last RCPT read found (smtp_policy_rcpt_read()) */
	char triplet[STORE_POLICY_TRIPLET_MAX + 1]; /* "" when not greylisting */
	int grey_found;                             /* 1, 0 unknown, -1 error */
	struct store_policy_greylist grey;
	int64_t client_passes; /* triplets the client network passed (-1: not read, error) */
	bool sub_read;         /* the submission counts below were read */
	int sub_ret;           /* 0, -1 error */
	uint64_t sub_messages, sub_new;
	int rcpt_known;  /* has the account sent to this recipient: 1, 0, -1 */
	unsigned tx_new; /* new recipients accepted in this transaction so far */
};

/* The per-server part: the rate tables (one for each listener's process). */
struct smtp_policy;
struct smtp_policy *smtp_policy_new(void);
void smtp_policy_free(struct smtp_policy **policy);

/* The client network of a numeric address: IPv4 /24 ("192.0.2"), IPv6 /64 (its first
 * four groups, "2001:db8:0:1"; an IPv4-mapped address as IPv4); anything else as given.
 * full: IPv4 whole instead (per-IP rates count one IPv4 host, but an IPv6 /64, which one
 * host usually holds all of). Writes at most size - 1 octets and a NUL. */
void smtp_policy_network(const char *ip, bool full, char *out, size_t size);
/* The greylisting key of a triplet: "sender/recipient/network", addresses lower-cased
 * ("" for the null sender). 0, or -1 when it would not fit in size. */
int smtp_policy_triplet(char *out, size_t size, const char *sender, const char *recipient,
                        const char *ip);

enum smtp_greylist_verdict {
	SMTP_GREYLIST_PASS,      /* passed before: let it through */
	SMTP_GREYLIST_PASS_NOTE, /* let it through and record the pass */
	SMTP_GREYLIST_DEFER_NEW, /* unknown (or expired): record it, 450 */
	SMTP_GREYLIST_DEFER,     /* retried too early: 450 */
};
/* Decide on a triplet as read (found: 1 with *entry, 0 unknown) at now: unknown, or last
 * seen expire seconds or more ago: DEFER_NEW; passed before: PASS (PASS_NOTE when it was
 * last seen an hour ago or more, to keep it fresh without a write per message); retried
 * delay seconds or more after it was first seen: PASS_NOTE; else DEFER. */
enum smtp_greylist_verdict smtp_policy_greylist_decide(int found,
                                                       const struct store_policy_greylist *entry,
                                                       time_t now, unsigned delay, unsigned expire);

/* Session hooks. connect: port 25 connection rate; true when refused (421, closing). */
bool smtp_policy_connect(struct smtp_session *s);
/* MAIL: port 25 message rate; true when refused (450 given). */
bool smtp_policy_mail(struct smtp_session *s);
/* In RCPT's read (where store reads may wait; s->read_addr is the recipient): what the
 * answer will need (greylisting triplet, submission counts). */
void smtp_policy_rcpt_read(struct smtp_session *s);
/* First thing of RCPT's answer: true when the policy answered (a refusal, or 421 and
 * closing), false to go on. */
bool smtp_policy_rcpt(struct smtp_session *s, const char *to);
/* A message goes to the store now: count it against the submitting account (queued to
 * the store's writer before the delivery, so it is committed when the delivery is; a
 * delivery that then fails was counted all the same). */
void smtp_policy_delivering(struct smtp_session *s);

#endif
