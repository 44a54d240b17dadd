/* libFuzzer target for core/conf: the input is a posthorn.conf text. conf_parse() must
 * either return a configuration (then freed) or NULL with an error message that names the
 * file and a line ("fuzz.conf:N: ...") or the file alone, and never read outside the text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		log_setup(LOG_LEVEL_ERROR, false);
		init = 1;
	}
	/* an exact-size copy: ASan sees any read past the end */
	char *text = malloc(size ? size : 1);
	memcpy(text, data, size);
	char *error = NULL;
	struct conf *conf = conf_parse("/nonexistent/fuzz.conf", text, size, &error);
	if (conf == NULL) {
		ASSERT(error != NULL && strncmp(error, "/nonexistent/fuzz.conf", 22) == 0);
		free(error);
	} else {
		ASSERT(error == NULL);
		conf_free(&conf);
		ASSERT(conf == NULL);
	}
	free(text);
	return 0;
}
