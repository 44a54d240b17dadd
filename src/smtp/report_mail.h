/* The mail that carries an aggregate report (DMARC, RFC 7489 §7.2.1.1; TLS-RPT, RFC 8460
 * §5.3): the head both RFCs ask for, a short text part and the compressed report as a
 * base64 attachment. dmarc_report.c and tlsrpt.c fill in what differs. */
#ifndef POSTHORN_SMTP_REPORT_MAIL_H
#define POSTHORN_SMTP_REPORT_MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct report_mail {
	const char *from, *to;    /* addresses (From:, To:) */
	const char *domain;       /* the policy domain */
	const char *submitter;    /* who reports */
	const char *report_id;    /* also the Message-ID */
	int64_t now;              /* Date: */
	const char *field_prefix; /* "TLS-Report": add TLS-Report-Domain and -Submitter; or NULL */
	const char *type;         /* the top Content-Type without its boundary: "multipart/mixed" */
	const char *boundary;
	const char *what;      /* the text part says "This is WHAT from SUBMITTER about DOMAIN." */
	const char *part_type; /* the attachment's Content-Type: "application/tlsrpt+gzip" */
	const char *filename;  /* the attachment's file name */
	const unsigned char *gz; /* the attachment's bytes */
	size_t gz_len;
};

/* Append the mail to out: Subject "Report Domain: D Submitter: S Report-ID: <ID>",
 * Auto-Submitted, CRLF lines, base64 in lines of 76. 0, or -1 when out is full. */
int report_mail_build(const struct report_mail *m, struct buf *out)
    __attribute__((warn_unused_result));

#endif
