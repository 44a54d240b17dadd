/* libFuzzer target for DKIM and ARC verification (mime/dkim_verify, mime/arc_verify): the
 * input's first line is the key record every lookup answers, the rest the message (its
 * DKIM-Signature and ARC fields, the header and body hashes). Every signature and the chain
 * must get a result, and nothing may read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/arc_verify.h"
#include "mime/dkim_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t klen = nl != NULL ? (size_t)(nl - data) : 0;
	const uint8_t *msg = nl != NULL ? nl + 1 : data;
	size_t mlen = size - (size_t)(msg - data);
	char *key = malloc(klen + 1);
	memcpy(key, data, klen);
	key[klen] = '\0';
	const char *texts[1] = {key};
	size_t lens[1] = {klen};
	struct dkim_verify *v = dkim_verify_new(msg, mlen, 4, 1700000000);
	int rounds = 0;
	for (; rounds < 10 && dkim_verify_run(v) == 0; rounds++)
		dkim_verify_answer(v, dkim_verify_need(v), DKIM_DNS_OK, texts, lens, 1);
	if (rounds == 10 || dkim_verify_count(v) > 4)
		abort(); /* one answer per signature must be enough */
	for (size_t i = 0; i < dkim_verify_count(v); i++)
		if (dkim_verify_result(v, i)->domain == NULL)
			abort();
	dkim_verify_free(&v);
	/* ARC: one key for the newest AMS and one per seal at most. */
	struct arc_verify *arc = arc_verify_new(msg, mlen, 1700000000);
	for (rounds = 0; rounds < ARC_INSTANCES_MAX + 2 && arc_verify_run(arc) == 0; rounds++)
		arc_verify_answer(arc, arc_verify_need(arc), DKIM_DNS_OK, texts, lens, 1);
	unsigned n;
	const char *problem, *sealer;
	enum arc_result r = arc_verify_result(arc, &n, &problem, &sealer);
	if (rounds == ARC_INSTANCES_MAX + 2 || n > ARC_INSTANCES_MAX || sealer == NULL ||
	    (r == ARC_RESULT_FAIL) != (problem != NULL))
		abort();
	arc_verify_free(&arc);
	free(key);
	return 0;
}
