/* IMAP THREAD (RFC 5256 §2.2, §4): ORDEREDSUBJECT and REFERENCES over the messages that
 * matched, and the nested-list answer. Pure: the header keys of a message come from its
 * header bytes (imap_thread_msg_headers()), the threading from an array of them, so unit
 * tests and fuzz/fuzz_imap_thread.c drive it without a server. Iterative throughout (no
 * recursion over the tree): a chain of 100,000 replies costs no stack. */
#ifndef POSTHORN_IMAP_IMAP_THREAD_H
#define POSTHORN_IMAP_IMAP_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"

enum imap_thread_algo {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

/* Message-IDs of References kept per message (the last ones: those nearest the message),
 * and the longest id taken as valid (RFC 5322 lines are at most 998 octets; real ids are
 * far shorter): what a thread holds per message stays small whatever the headers say. */
#define IMAP_THREAD_REFS_MAX 32
#define IMAP_THREAD_ID_MAX 250

/* One message to thread. */
struct imap_thread_msg {
	uint32_t seq, uid;
	int64_t arrival;        /* internal date */
	int64_t date;           /* sent date, or arrival (RFC 5256 §2.2) */
	const char *subject;    /* base subject, collation key (imap_sort_collate()); "" none */
	bool reply;             /* the subject showed a reply or forward (imap_sort_base_subject) */
	const char *message_id; /* without <>; NULL when missing or invalid */
	const char **refs;      /* References (or the first In-Reply-To id), oldest first */
	size_t ref_count;
};

/* Algorithm from its name (any case): 0, or -1 when unknown. */
int imap_thread_algo_parse(const char *name, enum imap_thread_algo *algo_r)
    __attribute__((warn_unused_result));

/* Fill m's header keys from len octets of its header section: base subject, reply flag,
 * Message-ID, References (else the first valid id of In-Reply-To) and date (m->arrival
 * must be set first). Strings in arena. Never fails. */
void imap_thread_msg_headers(struct arena *arena, const unsigned char *hdr, size_t len,
                             struct imap_thread_msg *m);

/* A node of the answer: msg NULL for a dummy (RFC 5256 "dummy message"). */
struct imap_thread_node {
	const struct imap_thread_msg *msg;
	struct imap_thread_node *parent, *child, *next; /* first child, next sibling */
	int64_t sort_date; /* the date the node sorts by (a dummy: its first child's) */
	uint32_t sort_seq;
};

/* Thread the n messages of msgs (any order; seq distinct) with algo. Returns the first
 * root (the others through ->next; NULL when n is 0), everything in arena. */
struct imap_thread_node *imap_thread_build(struct arena *arena, enum imap_thread_algo algo,
                                           const struct imap_thread_msg *msgs, size_t n);

/* Append the answer's threads "(1 2 (3)(4))..." (no "* THREAD" prefix) to out: UIDs when
 * uid, else sequence numbers. 0, -1 when out is full. */
int imap_thread_format(const struct imap_thread_node *roots, bool uid, struct buf *out)
    __attribute__((warn_unused_result));

#endif
