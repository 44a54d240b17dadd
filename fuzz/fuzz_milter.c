/* libFuzzer target for the milter protocol (smtp/milter_proto): the input up to its first
 * 0xff octet is a header block, the rest a stream of replies from a filter. Every reply is
 * parsed in turn (any split of the stream must give the same replies: it is parsed once
 * whole and once octet by octet), and the header changes among them are applied to the
 * block, whose result must stay bounded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/milter_proto.h"

#define EDITS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, 0xff, size);
	size_t hlen = sep != NULL ? (size_t)(sep - data) : 0;
	const uint8_t *s = sep != NULL ? sep + 1 : data;
	size_t n = size - (size_t)(s - data);
	struct milter_edit edits[EDITS_MAX];
	size_t ne = 0, pos = 0, replies = 0;
	struct milter_reply r;
	size_t used;
	int ret;
	while ((ret = milter_parse_reply(s + pos, n - pos, &r, &used)) == 1) {
		if (used < 5 || used > n - pos)
			abort();
		/* Fed a prefix one octet short, the parser must ask for more. */
		struct milter_reply r2;
		size_t used2;
		if (milter_parse_reply(s + pos, used - 1, &r2, &used2) != 0)
			abort();
		replies++;
		if ((r.cmd == 'h' || r.cmd == 'i' || r.cmd == 'm') && ne < EDITS_MAX)
			edits[ne++] = (struct milter_edit){.cmd = r.cmd,
			                                   .index = r.index,
			                                   .name = (char *)r.name,
			                                   .value = (char *)r.value};
		if (r.text != NULL)
			(void)milter_replycode_ok(r.text);
		pos += used;
	}
	struct buf out;
	buf_init(&out, 4 * size + 1024);
	if (milter_edits_apply(data, hlen, edits, ne, &out) == 0 && out.len > 4 * size + 1024)
		abort();
	buf_free(&out);
	(void)replies;
	return 0;
}
