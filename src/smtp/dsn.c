/* Delivery status notifications (see dsn.h): RFC 3464 multipart/report with a text part for
 * people, a message/delivery-status part for programs, and the original (RFC 3461 RET), or
 * their RFC 6533 message/global-* forms for SMTPUTF8 mail. */
#include "smtp/dsn.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/date.h"
#include "core/arena.h"
#include "smtp/smtp_parser.h"
#include "core/banned.h"

/* A report's own text lines stay below RFC 5322's 998 octets. */
#define DSN_FIELD_MAX 900

/* Text from elsewhere (a remote reply, an address) as one header-safe line: controls become
 * spaces, 8-bit octets '?' unless the report is UTF-8, and at most DSN_FIELD_MAX octets. */
static int dsn_put_safe(struct buf *b, const char *s, bool utf8)
{
	size_t n = 0;
	for (; s != NULL && *s != '\0' && n < DSN_FIELD_MAX; s++, n++) {
		unsigned char c = (unsigned char)*s;
		char o = c < 0x20 || c == 0x7f ? ' ' : c >= 0x80 && !utf8 ? '?' : (char)c;
		if (buf_append(b, &o, 1) < 0)
			return -1;
	}
	return 0;
}

/* ORCPT/ENVID are xtext on the wire (RFC 3461 §4); the report carries the decoded text. */
static int dsn_put_xtext(struct buf *b, const char *xtext, bool utf8)
{
	struct arena *a = arena_new(512);
	const char *text = NULL;
	if (smtp_parser_xtext_decode(a, xtext, strlen(xtext), &text) < 0)
		text = xtext;
	int r = dsn_put_safe(b, text, utf8);
	arena_free(&a);
	return r;
}

static const char *dsn_action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "failed";
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	case DSN_ACTION_RELAYED:
		return "relayed";
	}
	return "failed";
}

/* The report's kind: failure if any recipient failed, else delay, else success. */
static enum dsn_action dsn_kind(const struct dsn_report *r)
{
	enum dsn_action kind = DSN_ACTION_DELIVERED;
	for (size_t i = 0; i < r->rcpt_count; i++) {
		if (r->rcpts[i].action == DSN_ACTION_FAILED)
			return DSN_ACTION_FAILED;
		if (r->rcpts[i].action == DSN_ACTION_DELAYED)
			kind = DSN_ACTION_DELAYED;
	}
	return kind;
}

const char *dsn_subject(enum dsn_action kind)
{
	return kind == DSN_ACTION_FAILED    ? "Undelivered Mail Returned to Sender"
	       : kind == DSN_ACTION_DELAYED ? "Delayed Mail (still being retried)"
	                                    : "Successful Mail Delivery Report";
}

static int dsn_header(const struct dsn_report *r, enum dsn_action kind, const char *boundary,
                      struct buf *b)
{
	char date[DATE_RFC5322_MAX];
	date_rfc5322(r->now, date);
	const char *subject = dsn_subject(kind);
	if (buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\nTo: <",
	               r->reporting_mta) < 0 ||
	    dsn_put_safe(b, r->sender, r->utf8) < 0 ||
	    buf_printf(b,
	               ">\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <dsn.%s@%s>\r\n"
	               "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	               "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	               "\tboundary=\"%s\"\r\n\r\n"
	               "This is a MIME-encapsulated message.\r\n\r\n",
	               subject, date, r->unique, r->reporting_mta, boundary) < 0)
		return -1;
	return 0;
}

/* The part for people: what happened, to whom, and what the other side said. */
static int dsn_text_part(const struct dsn_report *r, enum dsn_action kind, struct buf *b)
{
	const char *intro =
	    kind == DSN_ACTION_FAILED
	        ? "Your message could not be delivered to one or more recipients.\r\n"
	          "Each address below failed permanently; the reason the receiving side gave\r\n"
	          "is quoted. Your message is attached.\r\n"
	    : kind == DSN_ACTION_DELAYED
	        ? "Your message has not been delivered yet to the recipients below.\r\n"
	          "This is only a warning: delivery is retried, and you do not need to send\r\n"
	          "the message again. You will be told if it finally fails.\r\n"
	        : "Your message was delivered to the recipients below, as you asked to be "
	          "told.\r\n";
	if (buf_printf(b,
	               "Content-Type: text/plain; charset=%s\r\n"
	               "Content-Description: Notification\r\n\r\n"
	               "This is the mail system at %s.\r\n\r\n%s\r\n",
	               r->utf8 ? "utf-8" : "us-ascii", r->reporting_mta, intro) < 0)
		return -1;
	for (size_t i = 0; i < r->rcpt_count; i++) {
		const struct dsn_recipient *rc = &r->rcpts[i];
		if (buf_puts(b, "<") < 0 || dsn_put_safe(b, rc->address, r->utf8) < 0 ||
		    buf_printf(b, ">: %s", dsn_action_name(rc->action)) < 0)
			return -1;
		if (rc->diagnostic != NULL) {
			if (buf_printf(b, ", %s said: ",
			               rc->remote_mta != NULL ? rc->remote_mta
			                                      : "the remote server") < 0 ||
			    dsn_put_safe(b, rc->diagnostic, r->utf8) < 0)
				return -1;
		}
		if (buf_puts(b, "\r\n") < 0)
			return -1;
	}
	return buf_puts(b, "\r\n");
}

static int dsn_recipient_fields(const struct dsn_report *r, const struct dsn_recipient *rc,
                                struct buf *b)
{
	char date[DATE_RFC5322_MAX];
	const char *type = r->utf8 ? "utf-8" : "rfc822";
	if (buf_puts(b, "\r\n") < 0)
		return -1;
	if (rc->orcpt != NULL) {
		if (buf_puts(b, "Original-Recipient: ") < 0 ||
		    dsn_put_xtext(b, rc->orcpt, r->utf8) < 0 || buf_puts(b, "\r\n") < 0)
			return -1;
	}
	if (buf_printf(b, "Final-Recipient: %s; ", type) < 0 ||
	    dsn_put_safe(b, rc->address, r->utf8) < 0 ||
	    buf_printf(b, "\r\nAction: %s\r\nStatus: ", dsn_action_name(rc->action)) < 0 ||
	    dsn_put_safe(b, rc->status != NULL ? rc->status : "5.0.0", false) < 0 ||
	    buf_puts(b, "\r\n") < 0)
		return -1;
	if (rc->remote_mta != NULL &&
	    (buf_puts(b, "Remote-MTA: dns; ") < 0 || dsn_put_safe(b, rc->remote_mta, false) < 0 ||
	     buf_puts(b, "\r\n") < 0))
		return -1;
	if (rc->diagnostic != NULL &&
	    (buf_puts(b, "Diagnostic-Code: smtp; ") < 0 ||
	     dsn_put_safe(b, rc->diagnostic, r->utf8) < 0 || buf_puts(b, "\r\n") < 0))
		return -1;
	if (rc->last_attempt > 0) {
		date_rfc5322(rc->last_attempt, date);
		if (buf_printf(b, "Last-Attempt-Date: %s\r\n", date) < 0)
			return -1;
	}
	if (rc->action == DSN_ACTION_DELAYED && rc->retry_until > 0) {
		date_rfc5322(rc->retry_until, date);
		if (buf_printf(b, "Will-Retry-Until: %s\r\n", date) < 0)
			return -1;
	}
	return 0;
}

/* The part for programs (RFC 3464 §2.2 per-message fields, §2.3 per-recipient fields). */
static int dsn_status_part(const struct dsn_report *r, struct buf *b)
{
	char date[DATE_RFC5322_MAX];
	date_rfc5322(r->arrival, date);
	if (buf_printf(b, "Content-Type: message/%s\r\n\r\n",
	               r->utf8 ? "global-delivery-status" : "delivery-status") < 0)
		return -1;
	if (r->envid != NULL &&
	    (buf_puts(b, "Original-Envelope-Id: ") < 0 || dsn_put_xtext(b, r->envid, r->utf8) < 0 ||
	     buf_puts(b, "\r\n") < 0))
		return -1;
	if (buf_printf(b, "Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n", r->reporting_mta,
	               date) < 0)
		return -1;
	for (size_t i = 0; i < r->rcpt_count; i++)
		if (dsn_recipient_fields(r, &r->rcpts[i], b) < 0)
			return -1;
	return buf_puts(b, "\r\n");
}

/* Length of the original's header, its blank line included (all of it when there is no
 * body). */
static size_t dsn_header_length(const unsigned char *m, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (m[i] != '\n')
			continue;
		if (i + 1 < len && m[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && m[i + 1] == '\r' && m[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* The original: whole for a failure unless RET=HDRS or it is over the limit; otherwise its
 * header (RFC 3461 §4.3: RET governs failure reports; others carry the header only). */
static int dsn_original_part(const struct dsn_report *r, enum dsn_action kind, struct buf *b)
{
	if (r->original == NULL || r->original_len == 0)
		return 0;
	bool full = kind == DSN_ACTION_FAILED && r->ret != DSN_RET_HDRS &&
	            (r->full_limit == 0 || r->original_len <= r->full_limit);
	size_t n = full ? r->original_len : dsn_header_length(r->original, r->original_len);
	const char *type = full ? (r->utf8 ? "message/global" : "message/rfc822")
	                        : (r->utf8 ? "message/global-headers" : "text/rfc822-headers");
	if (buf_printf(b, "Content-Type: %s\r\nContent-Description: %s\r\n\r\n", type,
	               full ? "Undelivered Message" : "Message Headers") < 0 ||
	    buf_append(b, r->original, n) < 0)
		return -1;
	if (n >= 2 && memcmp(r->original + n - 2, "\r\n", 2) == 0)
		return 0;
	return buf_puts(b, "\r\n");
}

int dsn_build(const struct dsn_report *r, struct buf *out)
{
	if (r->rcpt_count == 0)
		return -1;
	enum dsn_action kind = dsn_kind(r);
	/* Unpredictable, so that no original can contain the boundary and end a part early. */
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0x5a, sizeof(rnd));
	char boundary[200];
	int n = snprintf(boundary, sizeof(boundary), "%s/", r->unique);
	for (size_t i = 0; i < sizeof(rnd) && n > 0 && (size_t)n + 3 < sizeof(boundary); i++)
		n += snprintf(boundary + n, sizeof(boundary) - (size_t)n, "%02x", rnd[i]);
	snprintf(boundary + n, sizeof(boundary) - (size_t)n, "/%s", r->reporting_mta);
	if (dsn_header(r, kind, boundary, out) < 0 || buf_printf(out, "--%s\r\n", boundary) < 0 ||
	    dsn_text_part(r, kind, out) < 0 || buf_printf(out, "--%s\r\n", boundary) < 0 ||
	    dsn_status_part(r, out) < 0)
		return -1;
	if (r->original != NULL && r->original_len > 0 &&
	    (buf_printf(out, "--%s\r\n", boundary) < 0 || dsn_original_part(r, kind, out) < 0))
		return -1;
	return buf_printf(out, "\r\n--%s--\r\n", boundary);
}
