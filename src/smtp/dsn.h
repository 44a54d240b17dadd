/* Delivery status notifications (RFC 3464): the message a sender gets back when a delivery
 * failed, is delayed, or succeeded and was asked for (RFC 3461 NOTIFY). Pure: builds bytes
 * from a report; the outbound engine sends the result with the null sender. */
#ifndef POSTHORN_SMTP_DSN_H
#define POSTHORN_SMTP_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* RFC 3464 §2.3.3 Action. */
enum dsn_action { DSN_ACTION_FAILED, DSN_ACTION_DELAYED, DSN_ACTION_DELIVERED, DSN_ACTION_RELAYED };

/* RFC 3461 RET: what of the original comes back in a failure report. */
enum dsn_ret { DSN_RET_DEFAULT, DSN_RET_FULL, DSN_RET_HDRS };

struct dsn_recipient {
	const char *address; /* Final-Recipient (rfc822) */
	const char *orcpt;   /* ORCPT as given at RCPT ("rfc822;" xtext), NULL when none */
	enum dsn_action action;
	const char *status;     /* RFC 3463 code, e.g. "5.1.1" */
	const char *remote_mta; /* host that answered (dns), NULL when none did */
	const char *diagnostic; /* the remote's reply, e.g. "550 5.1.1 No such user", or NULL */
	int64_t last_attempt;   /* unix seconds, 0 when never attempted */
	int64_t retry_until;    /* for DELAYED: when the queue gives up (unix seconds) */
};

struct dsn_report {
	const char *reporting_mta; /* our host name */
	const char *sender;        /* the original envelope sender: the report's recipient */
	const char *envid;         /* RFC 3461 ENVID (xtext), NULL when none */
	int64_t arrival;           /* when the original was accepted (unix seconds) */
	int64_t now;               /* Date of the report */
	const struct dsn_recipient *rcpts;
	size_t rcpt_count; /* at least 1; all of one action make the subject, mixed say failure */
	enum dsn_ret ret;
	bool utf8; /* the original needed SMTPUTF8: message/global-* parts (RFC 6533) */
	/* The original message, without our Return-Path line: all of it or its header,
	 * depending on ret, the actions and full_limit. */
	const unsigned char *original;
	size_t original_len;
	size_t full_limit;  /* larger originals come back as their header only (0: no limit) */
	const char *unique; /* makes the boundary and Message-ID unique, e.g. the queue id */
};

/* The Subject of a report whose recipients' actions make it kind (failed, delayed, or a
 * success report). */
const char *dsn_subject(enum dsn_action kind);

/* Append the complete report message (header and body, CRLF lines) to out. Returns 0, or
 * -1 when out's maximum was reached or the report has no recipient. */
int dsn_build(const struct dsn_report *report, struct buf *out) __attribute__((warn_unused_result));

#endif
