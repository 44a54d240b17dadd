/* The mail of an aggregate report (see report_mail.h): the head and MIME parts that DMARC
 * (dmarc_report.c) and TLS-RPT (tlsrpt.c) reports share. */
#include "smtp/report_mail.h"

#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/date.h"
#include "core/banned.h"

int report_mail_build(const struct report_mail *m, struct buf *out)
{
	char date[DATE_RFC5322_MAX];
	date_rfc5322(m->now, date);
	if (buf_printf(out,
	               "From: <%s>\r\n"
	               "To: <%s>\r\n"
	               "Date: %s\r\n"
	               "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
	               "Message-ID: <%s>\r\n",
	               m->from, m->to, date, m->domain, m->submitter, m->report_id,
	               m->report_id) < 0)
		return -1;
	if (m->field_prefix != NULL &&
	    buf_printf(out, "%s-Domain: %s\r\n%s-Submitter: %s\r\n", m->field_prefix, m->domain,
	               m->field_prefix, m->submitter) < 0)
		return -1;
	if (buf_printf(out,
	               "Auto-Submitted: auto-generated\r\n"
	               "MIME-Version: 1.0\r\n"
	               "Content-Type: %s;\r\n"
	               "\tboundary=\"%s\"\r\n"
	               "\r\n"
	               "This is a multipart message in MIME format.\r\n"
	               "\r\n"
	               "--%s\r\n"
	               "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
	               "Content-Transfer-Encoding: 7bit\r\n"
	               "\r\n"
	               "This is %s from %s about %s.\r\n"
	               "\r\n"
	               "--%s\r\n"
	               "Content-Type: %s\r\n"
	               "Content-Transfer-Encoding: base64\r\n"
	               "Content-Disposition: attachment;\r\n"
	               "\tfilename=\"%s\"\r\n"
	               "\r\n",
	               m->type, m->boundary, m->boundary, m->what, m->submitter, m->domain,
	               m->boundary, m->part_type, m->filename) < 0)
		return -1;
	char *b64 = base64_encode_dup(m->gz, m->gz_len);
	size_t n = strlen(b64);
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i += 76)
		ret = buf_append(out, b64 + i, n - i < 76 ? n - i : 76) < 0 ||
		              buf_puts(out, "\r\n") < 0
		          ? -1
		          : 0;
	free(b64);
	if (ret < 0 || buf_printf(out, "\r\n--%s--\r\n", m->boundary) < 0)
		return -1;
	return 0;
}
