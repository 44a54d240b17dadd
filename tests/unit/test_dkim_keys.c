/* Unit tests for mime/dkim_keys: key files (modes, names, two per domain, remove and the
 * selector it leaves used), the zone-file line, and the signer's cache: a key generated or
 * removed counts from the next message, also when the directory's times look old. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mime/dkim_keys.h"
#include "core/banned.h"

static const char msg[] = "From: A <a@x.test>\r\nSubject: s\r\nDate: d\r\n\r\nbody\r\n";

static char *tmpdir(void)
{
	char *d = strdup("/tmp/test_dkim_keys.XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void rmtree(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

static void gen(const char *dir, const char *domain, const char *sel, enum dkim_algorithm alg,
                int want)
{
	struct buf rec, path;
	buf_init(&rec, 4096);
	buf_init(&path, 4096);
	const char *error = NULL;
	int r =
	    dkim_keys_generate(dir, domain, sel, alg, (uid_t)-1, (gid_t)-1, &rec, &path, &error);
	assert_int_equal(r, want);
	if (want == 0) {
		struct stat st;
		assert_int_equal(stat(buf_cstr(&path), &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_non_null(strstr(buf_cstr(&rec), alg == DKIM_ALG_RSA
		                                           ? "v=DKIM1; k=rsa; p=MII"
		                                           : "v=DKIM1; k=ed25519; p="));
	}
	buf_free(&rec);
	buf_free(&path);
}

static int count_sigs(struct dkim_keys *keys)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	const char *error;
	int n = dkim_keys_sign(keys, (const unsigned char *)msg, sizeof(msg) - 1, 1765000000, &out,
	                       &error);
	int fields = 0;
	for (const char *p = buf_cstr(&out); (p = strstr(p, "DKIM-Signature:")) != NULL; p++)
		fields++;
	assert_int_equal(n, fields);
	buf_free(&out);
	return n;
}

static void test_generate_and_cache(void **state)
{
	(void)state;
	char *dir = tmpdir();
	struct dkim_keys *keys = dkim_keys_new(dir);
	assert_int_equal(count_sigs(keys), 0); /* no dkim directory at all */
	gen(dir, "x.test", "one", DKIM_ALG_ED25519, 0);
	assert_int_equal(count_sigs(keys), 1);
	gen(dir, "x.test", "two", DKIM_ALG_RSA, 0);
	assert_int_equal(count_sigs(keys), 2);             /* the next message sees the new key */
	gen(dir, "x.test", "three", DKIM_ALG_ED25519, -1); /* a third is refused */
	gen(dir, "x.test", "ONE", DKIM_ALG_RSA, -1);       /* a selector in use, any case */
	/* once the directory's times are 2 s old the keys are cached: a key file changed in
	 * place (the directory unchanged) is not read again... */
	sleep(3);
	assert_int_equal(count_sigs(keys), 2);
	char path[512];
	snprintf(path, sizeof(path), "%s/dkim/x.test/two.rsa.pem", dir);
	int fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage\n", 8), 8);
	close(fd);
	assert_int_equal(count_sigs(keys), 2);
	/* ...and a change of the directory (generate, remove) is seen at the next message */
	const char *error;
	assert_int_equal(dkim_keys_remove(dir, "x.test", "two", &error), 1);
	assert_int_equal(count_sigs(keys), 1);
	assert_int_equal(dkim_keys_remove(dir, "x.test", "two", &error), 0);
	assert_true(dkim_keys_selector_used(dir, "x.test", "two"));
	assert_true(dkim_keys_selector_used(dir, "x.test", "One"));
	assert_false(dkim_keys_selector_used(dir, "x.test", "three"));
	assert_int_equal(dkim_keys_remove(dir, "x.test", "one", &error), 1);
	assert_int_equal(count_sigs(keys), 0);
	dkim_keys_free(&keys);
	assert_null(keys);
	rmtree(dir);
	free(dir);
}

static void test_unreadable_key(void **state)
{
	(void)state;
	char *dir = tmpdir();
	gen(dir, "x.test", "good", DKIM_ALG_ED25519, 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/dkim/x.test/bad.rsa.pem", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a key\n", f);
	fclose(f);
	struct dkim_keys *keys = dkim_keys_new(dir);
	struct buf out;
	buf_init(&out, 1 << 20);
	const char *error = NULL;
	assert_int_equal(
	    dkim_keys_sign(keys, (const unsigned char *)msg, sizeof(msg) - 1, 0, &out, &error), -1);
	assert_non_null(strstr(error, "bad.rsa.pem"));
	unlink(path);
	assert_int_equal(count_sigs(keys), 1);
	buf_free(&out);
	dkim_keys_free(&keys);
	rmtree(dir);
	free(dir);
}

static void list_cb(void *ctx, const struct dkim_key_info *info)
{
	struct buf *b = ctx;
	assert_int_equal(buf_printf(b, "%s/%s/%s;", info->domain, info->selector,
	                            dkim_algorithm_name(info->alg)),
	                 0);
	assert_true(info->created > 0);
}

static void test_list(void **state)
{
	(void)state;
	char *dir = tmpdir();
	struct buf b;
	buf_init(&b, 4096);
	const char *error;
	assert_int_equal(dkim_keys_list(dir, NULL, list_cb, &b, &error), 0);
	gen(dir, "b.test", "s2", DKIM_ALG_ED25519, 0);
	gen(dir, "b.test", "s1", DKIM_ALG_ED25519, 0);
	gen(dir, "a.test", "z", DKIM_ALG_ED25519, 0);
	assert_int_equal(dkim_keys_list(dir, NULL, list_cb, &b, &error), 3);
	assert_string_equal(buf_cstr(&b), "a.test/z/ed25519;b.test/s1/ed25519;b.test/s2/ed25519;");
	buf_reset(&b);
	assert_int_equal(dkim_keys_list(dir, "b.test", list_cb, &b, &error), 2);
	buf_free(&b);
	rmtree(dir);
	free(dir);
}

static void test_zone_line(void **state)
{
	(void)state;
	char txt[601];
	memset(txt, 'a', 600);
	txt[600] = '\0';
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(dkim_keys_zone_line("s", "x.test", txt, &b), 0);
	const char *l = buf_cstr(&b);
	assert_memory_equal(l, "s._domainkey.x.test. IN TXT \"", 29);
	/* three strings: 255, 255, 90 */
	const char *q = l + 28;
	size_t lens[3];
	for (int i = 0; i < 3; i++) {
		assert_true(q[0] == '"' || (q[0] == ' ' && q[1] == '"'));
		q = strchr(q, '"') + 1;
		const char *e = strchr(q, '"');
		lens[i] = (size_t)(e - q);
		q = e + 1;
	}
	assert_int_equal(lens[0], 255);
	assert_int_equal(lens[1], 255);
	assert_int_equal(lens[2], 90);
	assert_int_equal(*q, '\0');
	buf_reset(&b);
	assert_int_equal(dkim_keys_zone_line("s", "x.test", "v=DKIM1", &b), 0);
	assert_string_equal(buf_cstr(&b), "s._domainkey.x.test. IN TXT \"v=DKIM1\"");
	buf_free(&b);
}

static void test_selector_valid(void **state)
{
	(void)state;
	assert_true(dkim_keys_selector_valid("ph202612"));
	assert_true(dkim_keys_selector_valid("A-1"));
	assert_false(dkim_keys_selector_valid(""));
	assert_false(dkim_keys_selector_valid("-a"));
	assert_false(dkim_keys_selector_valid("a-"));
	assert_false(dkim_keys_selector_valid("a.b"));
	assert_false(dkim_keys_selector_valid("../x"));
	assert_false(dkim_keys_selector_valid("a_b"));
	char long_sel[65];
	memset(long_sel, 'a', 64);
	long_sel[64] = '\0';
	assert_false(dkim_keys_selector_valid(long_sel));
	long_sel[63] = '\0';
	assert_true(dkim_keys_selector_valid(long_sel));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_generate_and_cache),
	    cmocka_unit_test(test_unreadable_key),
	    cmocka_unit_test(test_list),
	    cmocka_unit_test(test_zone_line),
	    cmocka_unit_test(test_selector_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
