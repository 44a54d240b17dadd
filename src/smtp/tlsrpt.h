/* TLS-RPT (RFC 8460) as pure functions: the `_smtp._tls` TXT record (where to send
 * reports), the JSON report of one policy domain and UTC day built from the counted
 * session results the store keeps, and the report mail (multipart/report with the
 * gzip-compressed JSON). The collection and sending are smtp/outbound_tlsrpt.c's. The
 * record is network input: bounded, and fuzzed (fuzz/fuzz_tlsrpt.c). */
#ifndef POSTHORN_SMTP_TLSRPT_H
#define POSTHORN_SMTP_TLSRPT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

#define TLSRPT_RUA_MAX 4   /* report URIs used per domain (the rest are ignored) */
#define TLSRPT_URI_MAX 512 /* longer URIs are ignored */
#define TLSRPT_REPORT_MAX (4 * 1024 * 1024)

struct tlsrpt_record {
	size_t rua_count;
	char rua[TLSRPT_RUA_MAX][TLSRPT_URI_MAX]; /* "mailto:..." or "https://..." */
};

/* Parse one TXT record of _smtp._tls.DOMAIN (RFC 8460 §3): it must start with
 * "v=TLSRPTv1" (case-sensitive) and have a rua= field; fields are separated by ';' with
 * optional spaces or tabs around it, URIs in rua by ','. Only mailto: and https: URIs are
 * kept, at most TLSRPT_RUA_MAX; others, and malformed ones, are skipped. Extensions
 * (NAME=VALUE) are ignored. 1 a TLSRPT record with at least one usable URI in rec; 0 not a
 * TLSRPT record, malformed, or no usable URI. */
int tlsrpt_parse_txt(const char *txt, size_t len, struct tlsrpt_record *rec);

/* The address of a "mailto:" URI (RFC 6068: percent-decoded, up to '?'), in out (size n):
 * 0, or -1 when it is not a mailto: URI with one plain address (local@domain, no spaces,
 * controls, angle brackets or commas). */
int tlsrpt_mailto_address(const char *uri, char *out, size_t n);

/* An "https://HOST[:PORT][/PATH]" URI (RFC 8460 §3, §5.4): host (lower case, a name,
 * TLSRPT_HOST_MAX octets with the NUL), port (443 by default) and path ("/" when none; the
 * query is kept). 0, or -1 when it is not such a URI (userinfo, an address literal, a bad
 * port, a fragment, characters outside printable ASCII). */
#define TLSRPT_HOST_MAX 256
int tlsrpt_https_parse(const char *uri, char host[TLSRPT_HOST_MAX], int *port_r, char *path,
                       size_t path_size);

/* "YYYY-MM-DD" of day (days since 1970-01-01) into out (11 octets). */
void tlsrpt_day_text(int64_t day, char out[11]);
/* The day of "YYYY-MM-DD": 0 with *day_r, -1 when malformed. */
int tlsrpt_day_parse(const char *text, int64_t *day_r);

struct tlsrpt_report_meta {
	const char *organization; /* organization-name */
	const char *contact;      /* contact-info */
	const char *report_id;
	int64_t day; /* the UTC day the report covers */
};
/* The RFC 8460 §4.4 report of one policy domain: rows are that domain's results of the
 * day in store_tlsrpt_list() order (policy type and string grouped). One policy object per
 * (policy-type, policy-string) with its mx-host list, summary and failure-details (the
 * rows' counts added up per result-type and IPs). 0, or -1 when out is full. */
int tlsrpt_report_json(const struct tlsrpt_report_meta *meta, const struct store_tlsrpt_row *rows,
                       size_t count, struct buf *out);

/* gzip (RFC 1952) of len octets into out. 0, or -1 (too large, zlib error). */
int tlsrpt_gzip(const void *data, size_t len, struct buf *out);

struct tlsrpt_mail {
	const char *from;      /* the report address (From:) */
	const char *to;        /* the rua mailbox (To:) */
	const char *domain;    /* the policy domain (TLS-Report-Domain) */
	const char *submitter; /* organization (TLS-Report-Submitter) */
	const char *report_id;
	const char *hostname; /* Message-ID domain, file name */
	int64_t day, now;
	const unsigned char *gz; /* the gzip-compressed JSON report */
	size_t gz_len;
};
/* The report mail of RFC 8460 §5.3: Subject "Report Domain: D Submitter: S Report-ID:
 * <ID>", TLS-Report-Domain and TLS-Report-Submitter, multipart/report;
 * report-type="tlsrpt" with a short text part and the report as application/tlsrpt+gzip
 * (base64) named as §5.1 says. CRLF lines. 0, or -1 when out is full. */
int tlsrpt_mail_build(const struct tlsrpt_mail *m, struct buf *out);

#endif
