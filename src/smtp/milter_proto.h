/* The milter protocol, version 6, as the MTA speaks it (the subset Postfix implements;
 * Sendmail's libmilter is the other end): packets are a 32-bit length in network order
 * (counting the command octet), a command octet and its data. Pure: this module builds the
 * MTA's packets into a buffer and reads the filter's replies from bytes; smtp/milter runs
 * the conversation over a connection. */
#ifndef POSTHORN_SMTP_MILTER_PROTO_H
#define POSTHORN_SMTP_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define MILTER_VERSION 6
#define MILTER_CHUNK_MAX 65535       /* body octets per SMFIC_BODY */
#define MILTER_REPLY_MAX (64 * 1024) /* the largest reply we read */
#define MILTER_FIELDS_MAX 10000      /* header fields milter_edits_apply() keeps */

/* The MTA's commands (SMFIC_*). */
enum {
	MILTER_CMD_OPTNEG = 'O',
	MILTER_CMD_MACRO = 'D',
	MILTER_CMD_CONNECT = 'C',
	MILTER_CMD_HELO = 'H',
	MILTER_CMD_MAIL = 'M',
	MILTER_CMD_RCPT = 'R',
	MILTER_CMD_DATA = 'T',
	MILTER_CMD_HEADER = 'L',
	MILTER_CMD_EOH = 'N',
	MILTER_CMD_BODY = 'B',
	MILTER_CMD_EOB = 'E',
	MILTER_CMD_ABORT = 'A',
	MILTER_CMD_QUIT = 'Q',
};

/* The filter's replies (SMFIR_*). */
enum {
	MILTER_REPLY_ACCEPT = 'a',
	MILTER_REPLY_CONTINUE = 'c',
	MILTER_REPLY_DISCARD = 'd',
	MILTER_REPLY_REJECT = 'r',
	MILTER_REPLY_TEMPFAIL = 't',
	MILTER_REPLY_REPLYCODE = 'y',
	MILTER_REPLY_ADDHEADER = 'h',
	MILTER_REPLY_INSHEADER = 'i',
	MILTER_REPLY_CHGHEADER = 'm',
	MILTER_REPLY_QUARANTINE = 'q',
	MILTER_REPLY_PROGRESS = 'p',
	MILTER_REPLY_SKIP = 's',
	MILTER_REPLY_OPTNEG = 'O',
};

/* Actions a filter may take at end of message (SMFIF_*): the ones we carry out. */
#define MILTER_ACT_ADDHDRS 0x01u
#define MILTER_ACT_CHGHDRS 0x10u
#define MILTER_ACT_QUARANTINE 0x20u
#define MILTER_ACTIONS (MILTER_ACT_ADDHDRS | MILTER_ACT_CHGHDRS | MILTER_ACT_QUARANTINE)

/* Protocol steps a filter may ask us to leave out, or not to wait for a reply to
 * (SMFIP_*). */
#define MILTER_P_NOCONNECT 0x1u
#define MILTER_P_NOHELO 0x2u
#define MILTER_P_NOMAIL 0x4u
#define MILTER_P_NORCPT 0x8u
#define MILTER_P_NOBODY 0x10u
#define MILTER_P_NOHDRS 0x20u
#define MILTER_P_NOEOH 0x40u
#define MILTER_P_NR_HDR 0x80u
#define MILTER_P_NOUNKNOWN 0x100u
#define MILTER_P_NODATA 0x200u
#define MILTER_P_SKIP 0x400u
#define MILTER_P_NR_CONN 0x1000u
#define MILTER_P_NR_HELO 0x2000u
#define MILTER_P_NR_MAIL 0x4000u
#define MILTER_P_NR_RCPT 0x8000u
#define MILTER_P_NR_DATA 0x10000u
#define MILTER_P_NR_UNKN 0x20000u
#define MILTER_P_NR_EOH 0x40000u
#define MILTER_P_NR_BODY 0x80000u
#define MILTER_PROTOCOL 0xFF7FFu /* every flag above, and the unknown-command ones */

/* Append one packet: cmd and the n data octets. 0, or -1 when out is full. */
int milter_put(struct buf *out, char cmd, const void *data, size_t n)
    __attribute__((warn_unused_result));
/* Append a packet whose data are the NUL-terminated strings given (count of them),
 * each with its NUL. */
int milter_put_strings(struct buf *out, char cmd, const char *const *strings, size_t count)
    __attribute__((warn_unused_result));
/* SMFIC_OPTNEG with our version, actions and protocol flags. */
int milter_put_optneg(struct buf *out) __attribute__((warn_unused_result));
/* SMFIC_CONNECT: host name, then family '4' or '6' with the port and the address text. */
int milter_put_connect(struct buf *out, const char *hostname, bool ipv6, uint16_t port,
                       const char *address) __attribute__((warn_unused_result));

/* One reply from the filter; strings point into the bytes parsed (valid while they are). */
struct milter_reply {
	char cmd;
	uint32_t version, actions, protocol; /* OPTNEG */
	uint32_t index;                      /* INSHEADER, CHGHEADER */
	const char *name, *value;            /* ADDHEADER, INSHEADER, CHGHEADER */
	const char *text;                    /* REPLYCODE, QUARANTINE */
};

/* Parse the first reply of p[0..len): 1 with *r and *used_r (octets it took), 0 when more
 * octets are needed, -1 when it is malformed or longer than MILTER_REPLY_MAX. The strings of
 * a reply are checked to be NUL-terminated inside it. */
int milter_parse_reply(const unsigned char *p, size_t len, struct milter_reply *r, size_t *used_r)
    __attribute__((warn_unused_result));

/* True when text is a usable SMFIR_REPLYCODE: "4XX x.y.z text" or "5XX ..." (a code and a
 * space or a hyphen; RFC 5321 reply lines without CR or LF inside). */
bool milter_replycode_ok(const char *text);

/* ---- header changes at end of message ---- */

/* Not a milter reply: our own edit that deletes every field of that name (any case) in one
 * pass over the header block (rspamd's "remove all", and our removal of forged copies). */
#define MILTER_EDIT_DELETE_ALL 'D'

struct milter_edit {
	char cmd;       /* ADDHEADER, INSHEADER, CHGHEADER or MILTER_EDIT_DELETE_ALL */
	uint32_t index; /* INSHEADER: the position (0 = first); CHGHEADER: the n-th field of
	                 * that name (1 = first) */
	char *name, *value;
};

/* Apply edits in order to the header block hdr[0..len) (fields with CRLF line ends, without
 * the empty line that ends it) into out: ADDHEADER appends a field, INSHEADER puts it
 * before the index-th field, CHGHEADER replaces the index-th field of that name (any case)
 * or deletes it when value is empty (a field that does not exist: nothing happens, as
 * libmilter's MTA side does); MILTER_EDIT_DELETE_ALL deletes every field of that name,
 * marking them and compacting once (linear, where CHGHEADER is a scan per edit). Values are written
 * as the filter gave them, their LF line ends made CRLF. 0, or -1 when out is full. */
int milter_edits_apply(const unsigned char *hdr, size_t len, const struct milter_edit *edits,
                       size_t n, struct buf *out) __attribute__((warn_unused_result));

#endif
