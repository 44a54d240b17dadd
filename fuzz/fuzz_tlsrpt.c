/* libFuzzer target for the TLS-RPT record parser (RFC 8460 §3): the input as a _smtp._tls
 * TXT record; every kept URI is a NUL-terminated, usable mailto: or https: URI within the
 * limits: a mailto: one yields an address, an https: one a host, port and path. The input is also
 * written as a JSON string, which must come out as valid UTF-8 without raw control characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "smtp/tlsrpt.h"

static void check_json(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	struct buf b;
	buf_init(&b, 16 * size + 16);
	if (json_string(&b, s) < 0)
		abort();
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20)
			abort();
	if (b.len < 2 || b.data[0] != '"' || b.data[b.len - 1] != '"')
		abort();
	buf_free(&b);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsrpt_record rec;
	if (tlsrpt_parse_txt((const char *)data, size, &rec) == 1) {
		if (rec.rua_count == 0 || rec.rua_count > TLSRPT_RUA_MAX)
			abort();
		for (size_t i = 0; i < rec.rua_count; i++) {
			size_t n = strnlen(rec.rua[i], TLSRPT_URI_MAX);
			char addr[TLSRPT_URI_MAX];
			if (n == 0 || n >= TLSRPT_URI_MAX)
				abort();
			if (strncasecmp(rec.rua[i], "mailto:", 7) == 0) {
				if (tlsrpt_mailto_address(rec.rua[i], addr, sizeof(addr)) < 0 ||
				    strchr(addr, '@') == NULL)
					abort();
			} else {
				char host[TLSRPT_HOST_MAX], path[TLSRPT_URI_MAX];
				int port;
				if (tlsrpt_https_parse(rec.rua[i], host, &port, path,
				                       sizeof(path)) < 0 ||
				    port < 1 || port > 65535 || path[0] != '/' || host[0] == '\0')
					abort();
			}
		}
	}
	check_json(data, size);
	return 0;
}
