/* DMARC aggregate reports (RFC 7489 §7.2 and Appendix C) as pure functions: the rua= list
 * of a record (mailto: URIs with their size limits), the external destination record
 * (§7.1), alignment per method for the report rows, the XML report of one policy domain
 * and day from the rows the store counted, its file name (§7.2.1.1) and the report mail
 * (multipart/mixed with the gzip-compressed XML). Collecting is smtp/dmarc_collect.c's,
 * sending smtp/outbound_dmarc.c's. */
#ifndef POSTHORN_SMTP_DMARC_REPORT_H
#define POSTHORN_SMTP_DMARC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

#define DMARC_REPORT_RUA_MAX 4 /* addresses used per domain (the rest are ignored) */
#define DMARC_REPORT_ADDRESS_MAX 320
#define DMARC_REPORT_XML_MAX (32 * 1024 * 1024) /* STORE_DMARC_DAY_ROWS_MAX rows fit */

struct dmarc_report_rua {
	char address[DMARC_REPORT_ADDRESS_MAX]; /* local@domain */
	uint64_t max_size;                      /* §6.4 "!size": octets, 0 = no limit */
};

/* The mailto: URIs of a rua= value (§6.3, §6.4: comma-separated, each with an optional
 * "!" size and unit k, m, g or t; white space around them ignored). Other schemes and
 * malformed URIs are skipped. At most max into out; returns how many. */
size_t dmarc_report_rua_parse(const char *rua, struct dmarc_report_rua *out, size_t max);

/* §7.1: is text (one TXT string of POLICY._report._dmarc.RUA-DOMAIN) a record that
 * starts with v=DMARC1 (spaces allowed around '=' and before ';')? */
bool dmarc_report_txt_authorizes(const char *text, size_t len);

struct dmarc_report_meta {
	const char *org_name; /* report_metadata */
	const char *email;
	const char *report_id;
	int64_t begin, end; /* date_range, unix seconds */
};
/* The Appendix C feedback document of one policy domain: rows are that domain's rows of
 * the day (store_dmarc_list() order); policy_published is the first row's record. Text is
 * escaped for XML (& < > " '; control characters become '?'). 0, or -1 when out is full or
 * count is 0. */
int dmarc_report_xml(const struct dmarc_report_meta *meta, const struct store_dmarc_row *rows,
                     size_t count, struct buf *out);

/* gzip (RFC 1952) of len octets (at most DMARC_REPORT_XML_MAX) appended to out. 0, or -1
 * (too large, zlib error, out full). */
int dmarc_report_gzip(const void *data, size_t len, struct buf *out);

/* §7.2.1.1: "receiver!policy-domain!begin!end.xml.gz" into out (size n). */
void dmarc_report_filename(const char *receiver, const char *domain, int64_t begin, int64_t end,
                           char *out, size_t n);

struct dmarc_report_mail {
	const char *from, *to; /* addresses */
	const char *domain;    /* the policy domain */
	const char *submitter; /* the receiver's domain (our host name) */
	const char *report_id;
	int64_t begin, end, now;
	const unsigned char *gz; /* the gzip-compressed XML */
	size_t gz_len;
};
/* The report mail of §7.2.1.1: Subject "Report Domain: D Submitter: S Report-ID: <ID>",
 * multipart/mixed with a short text part and the report as application/gzip (base64)
 * named by dmarc_report_filename(). CRLF lines. 0, or -1 when out is full. */
int dmarc_report_mail_build(const struct dmarc_report_mail *m, struct buf *out);

#endif
