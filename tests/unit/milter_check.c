/* The milter client's driver for tests/integration/test_milter.py: runs one conversation
 * (smtp/milter) on a standalone loop with the filter at argv[1] for the message in the file
 * argv[2], sender argv[3] and recipients argv[4...], client 192.0.2.7 "[192.0.2.7]" with HELO
 * client.example, and prints "action TAB reply TAB failure" ("-" for none), the quarantine reason
 * line "quarantine REASON" when there is one, then the header block with the filter's
 * changes applied. The loop ends when no event is left: the connection is closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "mime/dkim_canon.h"
#include "net/server.h"
#include "smtp/milter.h"
#include "core/banned.h"

struct run {
	const unsigned char *msg;
	size_t len;
};

static void done(const struct milter_result *r, void *ctx)
{
	struct run *run = ctx;
	printf("%s\t%s\t%s\n", milter_action_name(r->action), r->reply[0] != '\0' ? r->reply : "-",
	       r->failure != NULL ? r->failure : "-");
	if (r->quarantine[0] != '\0')
		printf("quarantine %s\n", r->quarantine);
	/* The header block: up to the empty line. */
	size_t end = 0;
	while (end + 1 < run->len && !(run->msg[end] == '\n' && (end + 2 < run->len) &&
	                               run->msg[end + 1] == '\r' && run->msg[end + 2] == '\n'))
		end++;
	struct buf out;
	buf_init(&out, 1 << 20);
	if (milter_edits_apply(run->msg, end + 1, r->edits, r->edit_count, &out) == 0)
		fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	FILE *f = fopen(argv[2], "rb");
	if (f == NULL)
		return 2;
	static unsigned char msg[1 << 22];
	size_t len = fread(msg, 1, sizeof(msg), f);
	fclose(f);
	struct net_loop *loop = net_loop_new();
	struct run run = {.msg = msg, .len = len};
	struct milter_request req = {
	    .address = argv[1],
	    .timeout = 5,
	    .fallback = MILTER_TEMPFAIL,
	    .client_ip = "192.0.2.7",
	    .client_name = NULL, /* no confirmed name: "[192.0.2.7]" */
	    .helo = "client.example",
	    .mail_from = argv[3],
	    .rcpts = (const char *const *)argv + 4,
	    .rcpt_count = (size_t)argc - 4,
	    .queue_id = "Q1234",
	    .our_name = "mx.example",
	    .msg = msg,
	    .len = len,
	};
	const char *err;
	struct milter *m = milter_start(loop, &req, done, &run, &err);
	if (m == NULL) {
		printf("start-failed %s\n", err);
		return 1;
	}
	net_loop_run(loop); /* until the connection is gone: no event is left */
	net_loop_free(&loop);
	return 0;
}
