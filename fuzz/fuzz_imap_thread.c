/* libFuzzer target for imap/imap_sort and imap/imap_thread: the input is a set of header
 * sections separated by NUL octets (at most 64). Each goes through base subject
 * extraction, the sort keys of every criterion and the thread keys; then the messages are
 * sorted (the order must be total and consistent with imap_sort_cmp()) and threaded with
 * both algorithms, and the answer must name every message exactly once with balanced
 * parentheses. Arbitrary octets: broken, looping and duplicate references included. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "imap/imap_sort.h"
#include "imap/imap_thread.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MSGS 64

/* Every number 1..n once in the answer, parentheses balanced. */
static void fuzz_check_answer(const char *s, size_t n)
{
	unsigned char seen[FUZZ_MSGS + 1] = {0};
	int depth = 0;
	size_t count = 0;
	for (const char *p = s; *p != '\0';) {
		if (*p == '(') {
			depth++;
			p++;
		} else if (*p == ')') {
			ASSERT(depth > 0);
			depth--;
			p++;
		} else if (*p == ' ') {
			p++;
		} else {
			ASSERT(*p >= '1' && *p <= '9');
			unsigned v = 0;
			while (*p >= '0' && *p <= '9')
				v = v * 10 + (unsigned)(*p++ - '0');
			ASSERT(v >= 1 && v <= n && !seen[v]);
			seen[v] = 1;
			count++;
		}
	}
	ASSERT(depth == 0 && count == n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *arena = arena_new(16384);
	static const struct imap_sort_crit all[] = {
	    {IMAP_SORT_SUBJECT, false},   {IMAP_SORT_FROM, true}, {IMAP_SORT_DATE, false},
	    {IMAP_SORT_TO, false},        {IMAP_SORT_CC, true},   {IMAP_SORT_DISPLAYFROM, false},
	    {IMAP_SORT_DISPLAYTO, false}, {IMAP_SORT_SIZE, true}, {IMAP_SORT_ARRIVAL, false}};
	size_t ncrit = sizeof(all) / sizeof(all[0]);
	struct imap_sort_msg sm[FUZZ_MSGS];
	struct imap_sort_msg *sp[FUZZ_MSGS];
	struct imap_thread_msg tm[FUZZ_MSGS];
	size_t n = 0, pos = 0;
	while (pos <= size && n < FUZZ_MSGS) {
		const uint8_t *nul = pos < size ? memchr(data + pos, 0, size - pos) : NULL;
		size_t len = nul != NULL ? (size_t)(nul - data) - pos : size - pos;
		/* a private copy, so reads past the part are caught */
		unsigned char *h = malloc(len + 1);
		memcpy(h, data + pos, len);
		bool reply;
		(void)imap_sort_base_subject(arena, (const char *)h, len, &reply);
		int64_t t;
		(void)imap_sort_parse_date((const char *)h, len, &t);
		sm[n] = (struct imap_sort_msg){.seq = (uint32_t)n + 1,
		                               .uid = (uint32_t)n + 7,
		                               .size = len,
		                               .arrival = (int64_t)len * 1000};
		imap_sort_msg_headers(arena, all, ncrit, h, len, &sm[n]);
		sp[n] = &sm[n];
		tm[n] = (struct imap_thread_msg){
		    .seq = (uint32_t)n + 1, .uid = (uint32_t)n + 7, .arrival = (int64_t)len * 1000};
		imap_thread_msg_headers(arena, h, len, &tm[n]);
		free(h);
		n++;
		if (nul == NULL)
			break;
		pos += len + 1;
	}
	imap_sort_msgs(all, ncrit, sp, n);
	for (size_t i = 1; i < n; i++)
		ASSERT(imap_sort_cmp(all, ncrit, sp[i - 1], sp[i]) < 0);
	for (int algo = 0; algo < 2; algo++) {
		struct imap_thread_node *roots =
		    imap_thread_build(arena, (enum imap_thread_algo)algo, tm, n);
		struct buf b;
		buf_init(&b, 1 << 20);
		ASSERT(imap_thread_format(roots, false, &b) == 0);
		fuzz_check_answer(buf_cstr(&b), n);
		buf_free(&b);
	}
	arena_free(&arena);
	return 0;
}
