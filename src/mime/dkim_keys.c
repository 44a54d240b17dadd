/* DKIM key files and the cached key set of the signer (see dkim_keys.h). */
#include "mime/dkim_keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/base64.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define DKIM_KEYS_CACHE_MAX 1024 /* domains cached; the cache starts over when full */
#define DKIM_PATH_MAX 4096

static _Thread_local char dkim_keys_err[512];

static const char *dkim_keys_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *dkim_keys_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dkim_keys_err, sizeof(dkim_keys_err), fmt, ap);
	va_end(ap);
	return dkim_keys_err;
}

bool dkim_keys_selector_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

/* "<dir>/dkim[/<domain>[/<name>]]" into a fixed buffer. -1 when too long. */
static int dkim_path(char *out, const char *data_dir, const char *domain, const char *name)
{
	int n;
	if (domain == NULL)
		n = snprintf(out, DKIM_PATH_MAX, "%s/dkim", data_dir);
	else if (name == NULL)
		n = snprintf(out, DKIM_PATH_MAX, "%s/dkim/%s", data_dir, domain);
	else
		n = snprintf(out, DKIM_PATH_MAX, "%s/dkim/%s/%s", data_dir, domain, name);
	return n < 0 || n >= DKIM_PATH_MAX ? -1 : 0;
}

/* The key file name of selector + alg into out (room for 128). -1 when too long. */
static int dkim_key_name(char *out, const char *selector, enum dkim_algorithm alg)
{
	int n = snprintf(out, 128, "%s.%s.pem", selector, dkim_algorithm_name(alg));
	return n < 0 || n >= 128 ? -1 : 0;
}

/* The tombstone name of a removed selector into out (room for 128). -1 when too long. */
static int dkim_removed_name(char *out, const char *selector)
{
	int n = snprintf(out, 128, ".removed-%s", selector);
	return n < 0 || n >= 128 ? -1 : 0;
}

/* Parse a key file name "<selector>.<algorithm>.pem" into selector (room for 64). */
static bool dkim_file_name(const char *name, char *selector, enum dkim_algorithm *alg_r)
{
	size_t n = strlen(name);
	if (n < 5 || strcmp(name + n - 4, ".pem") != 0)
		return false;
	const char *dot = memchr(name, '.', n - 4);
	if (dot == NULL || (size_t)(dot - name) > 63)
		return false;
	char alg[16];
	size_t alen = (size_t)(name + n - 4 - (dot + 1));
	if (alen == 0 || alen >= sizeof(alg))
		return false;
	memcpy(alg, dot + 1, alen);
	alg[alen] = '\0';
	memcpy(selector, name, (size_t)(dot - name));
	selector[dot - name] = '\0';
	return dkim_algorithm_parse(alg, alg_r) == 0 && dkim_keys_selector_valid(selector);
}

/* ---- listing ---- */

struct dkim_entry {
	char selector[64];
	enum dkim_algorithm alg;
	time_t created;
};

static int dkim_entry_cmp(const void *a, const void *b)
{
	const struct dkim_entry *x = a, *y = b;
	int c = strcmp(x->selector, y->selector);
	return c != 0 ? c : (int)x->alg - (int)y->alg;
}

/* The key files of one domain, sorted; at most max. Count, or -1 (errno) when the
 * directory cannot be read (ENOENT: none). */
static int dkim_domain_entries(const char *data_dir, const char *domain, struct dkim_entry *entries,
                               size_t max)
{
	char path[DKIM_PATH_MAX];
	if (dkim_path(path, data_dir, domain, NULL) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	DIR *d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < max) {
		struct dkim_entry *e = &entries[n];
		if (!dkim_file_name(de->d_name, e->selector, &e->alg))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
			continue;
		e->created = st.st_mtime;
		n++;
	}
	closedir(d);
	qsort(entries, n, sizeof(*entries), dkim_entry_cmp);
	return (int)n;
}

static int dkim_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int dkim_keys_list(const char *data_dir, const char *domain,
                   void (*cb)(void *ctx, const struct dkim_key_info *info), void *ctx,
                   const char **error_r)
{
	char path[DKIM_PATH_MAX];
	char **domains = NULL;
	size_t ndomains = 0;
	if (domain != NULL) {
		domains = xmalloc(sizeof(*domains));
		domains[ndomains++] = xstrdup(domain);
	} else {
		if (dkim_path(path, data_dir, NULL, NULL) < 0) {
			*error_r = "data directory path too long";
			return -1;
		}
		DIR *d = opendir(path);
		if (d == NULL && errno != ENOENT) {
			*error_r = dkim_keys_fail("cannot read %s: %s", path, strerror(errno));
			return -1;
		}
		struct dirent *de;
		while (d != NULL && (de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			domains = xrealloc(domains, (ndomains + 1) * sizeof(*domains));
			domains[ndomains++] = xstrdup(de->d_name);
		}
		if (d != NULL)
			closedir(d);
		if (ndomains > 0)
			qsort(domains, ndomains, sizeof(*domains), dkim_str_cmp);
	}
	int total = 0;
	for (size_t i = 0; i < ndomains; i++) {
		struct dkim_entry entries[64];
		int n = total >= 0 ? dkim_domain_entries(data_dir, domains[i], entries, 64) : 0;
		if (n < 0) {
			*error_r = dkim_keys_fail("cannot read the keys of %s: %s", domains[i],
			                          strerror(errno));
			total = -1;
		}
		for (int k = 0; k < n; k++, total++) {
			struct dkim_key_info info = {domains[i], entries[k].selector,
			                             entries[k].alg, entries[k].created};
			cb(ctx, &info);
		}
		free(domains[i]);
	}
	free(domains);
	return total;
}

int dkim_keys_remove(const char *data_dir, const char *domain, const char *selector,
                     const char **error_r)
{
	if (!dkim_keys_selector_valid(selector) || strchr(domain, '/') != NULL ||
	    domain[0] == '.') {
		*error_r = "invalid domain or selector";
		return -1;
	}
	int removed = 0;
	for (int a = DKIM_ALG_RSA; a <= DKIM_ALG_ED25519; a++) {
		char name[128], path[DKIM_PATH_MAX];
		if (dkim_key_name(name, selector, (enum dkim_algorithm)a) < 0 ||
		    dkim_path(path, data_dir, domain, name) < 0) {
			*error_r = "data directory path too long";
			return -1;
		}
		if (unlink(path) == 0)
			removed = 1;
		else if (errno != ENOENT) {
			*error_r = dkim_keys_fail("cannot remove %s: %s", path, strerror(errno));
			return -1;
		}
	}
	if (removed) {
		/* remember the selector, so that a default one is not reused (see header) */
		char name[128], path[DKIM_PATH_MAX];
		if (dkim_removed_name(name, selector) == 0 &&
		    dkim_path(path, data_dir, domain, name) == 0) {
			int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (fd >= 0)
				close(fd);
		}
	}
	return removed;
}

bool dkim_keys_selector_used(const char *data_dir, const char *domain, const char *selector)
{
	struct dkim_entry entries[64];
	int n = dkim_domain_entries(data_dir, domain, entries, 64);
	for (int i = 0; i < n; i++)
		if (strcasecmp(entries[i].selector, selector) == 0)
			return true;
	char name[128], path[DKIM_PATH_MAX];
	return dkim_removed_name(name, selector) == 0 &&
	       dkim_path(path, data_dir, domain, name) == 0 && access(path, F_OK) == 0;
}

/* ---- generating ---- */

static int dkim_mkdir(const char *path, uid_t uid, gid_t gid, const char **error_r)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		*error_r = dkim_keys_fail("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if (uid != (uid_t)-1 && chown(path, uid, gid) != 0) {
		*error_r = dkim_keys_fail("cannot give %s to uid %u: %s", path, (unsigned)uid,
		                          strerror(errno));
		return -1;
	}
	return 0;
}

/* The record text for the public half of pkey. */
static int dkim_record(EVP_PKEY *pkey, enum dkim_algorithm alg, struct buf *record)
{
	unsigned char raw[64];
	unsigned char *der = NULL;
	const unsigned char *pub = raw;
	size_t len = sizeof(raw);
	if (alg == DKIM_ALG_ED25519) {
		/* RFC 8463 §4.2: p= is the 32-octet public key itself, not an SPKI */
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1)
			return -1;
	} else {
		/* RFC 6376 §3.6.1: the SubjectPublicKeyInfo DER, as every DKIM tool writes */
		int n = i2d_PUBKEY(pkey, &der);
		if (n <= 0)
			return -1;
		pub = der;
		len = (size_t)n;
	}
	char *b64 = base64_encode_dup(pub, len);
	OPENSSL_free(der);
	int ret = buf_printf(record, "v=DKIM1; k=%s; p=%s", dkim_algorithm_name(alg), b64);
	free(b64);
	return ret;
}

/* Write pem to dir/name through a temporary file; link() never replaces a file. */
static int dkim_write_key(const char *dir, const char *name, const char *pem, size_t pem_len,
                          uid_t uid, gid_t gid, const char **error_r)
{
	char tmp[DKIM_PATH_MAX], final[DKIM_PATH_MAX];
	int n1 = snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, name, (long)getpid());
	int n2 = snprintf(final, sizeof(final), "%s/%s", dir, name);
	if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(tmp) || (size_t)n2 >= sizeof(final)) {
		*error_r = "data directory path too long";
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = dkim_keys_fail("cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	bool ok = fchmod(fd, 0600) == 0 && (uid == (uid_t)-1 || fchown(fd, uid, gid) == 0) &&
	          write(fd, pem, pem_len) == (ssize_t)pem_len && fsync(fd) == 0;
	int saved = errno;
	ok = close(fd) == 0 && ok;
	if (ok && link(tmp, final) != 0) {
		saved = errno;
		ok = false;
	}
	unlink(tmp);
	if (!ok) {
		*error_r = dkim_keys_fail("cannot write %s: %s", final,
		                          saved == EEXIST ? "it exists" : strerror(saved));
		return -1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* Refuse an existing selector or a full domain. */
static int dkim_generate_check(const char *data_dir, const char *domain, const char *selector,
                               const char **error_r)
{
	struct dkim_entry entries[64];
	int n = dkim_domain_entries(data_dir, domain, entries, 64);
	if (n < 0) {
		*error_r =
		    dkim_keys_fail("cannot read the keys of %s: %s", domain, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (strcasecmp(entries[i].selector, selector) == 0) {
			*error_r = dkim_keys_fail("%s already has a key with selector %s", domain,
			                          entries[i].selector);
			return -1;
		}
	}
	if (n >= DKIM_KEYS_PER_DOMAIN_MAX) {
		*error_r = dkim_keys_fail(
		    "%s already has %d keys (selectors %s and %s); remove one first with "
		    "`posthorn dkim remove %s SELECTOR`",
		    domain, n, entries[0].selector, entries[1].selector, domain);
		return -1;
	}
	return 0;
}

int dkim_keys_generate(const char *data_dir, const char *domain, const char *selector,
                       enum dkim_algorithm alg, uid_t uid, gid_t gid, struct buf *record,
                       struct buf *path, const char **error_r)
{
	char dir[DKIM_PATH_MAX], name[128];
	if (!dkim_keys_selector_valid(selector)) {
		*error_r = "a selector is 1 to 63 letters, digits and '-'";
		return -1;
	}
	if (dkim_path(dir, data_dir, NULL, NULL) < 0 || dkim_mkdir(dir, uid, gid, error_r) < 0 ||
	    dkim_path(dir, data_dir, domain, NULL) < 0 || dkim_mkdir(dir, uid, gid, error_r) < 0 ||
	    dkim_generate_check(data_dir, domain, selector, error_r) < 0)
		return -1;
	if (dkim_key_name(name, selector, alg) < 0) {
		*error_r = "selector too long";
		return -1;
	}
	EVP_PKEY *pkey = alg == DKIM_ALG_ED25519
	                     ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
	                     : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long pem_len = 0;
	int ret = -1;
	*error_r = "key generation failed";
	if (pkey != NULL && bio != NULL &&
	    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (pem_len = BIO_get_mem_data(bio, &pem)) > 0 &&
	    dkim_write_key(dir, name, pem, (size_t)pem_len, uid, gid, error_r) == 0) {
		ret =
		    dkim_record(pkey, alg, record) == 0 && buf_printf(path, "%s/%s", dir, name) == 0
		        ? 0
		        : -1;
		if (ret < 0)
			*error_r = "cannot format the DNS record";
	}
	if (pem != NULL && pem_len > 0)
		OPENSSL_cleanse(pem, (size_t)pem_len);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return ret;
}

int dkim_keys_zone_line(const char *selector, const char *domain, const char *txt, struct buf *out)
{
	if (buf_printf(out, "%s._domainkey.%s. IN TXT", selector, domain) < 0)
		return -1;
	size_t len = strlen(txt);
	for (size_t pos = 0; pos < len || pos == 0; pos += 255) {
		size_t k = len - pos < 255 ? len - pos : 255;
		if (buf_puts(out, " \"") < 0 || buf_append(out, txt + pos, k) < 0 ||
		    buf_puts(out, "\"") < 0)
			return -1;
		if (len == 0)
			break;
	}
	return 0;
}

/* ---- the signer's key set ---- */

struct dkim_domain {
	char *domain;
	struct timespec mtime, ctime;
	dev_t dev;
	ino_t ino;
	bool stable; /* loaded when the directory's times were old enough to trust */
	size_t nkeys;
	char *selectors[DKIM_KEYS_LOAD_MAX];
	struct dkim_key keys[DKIM_KEYS_LOAD_MAX];
};

struct dkim_keys {
	char *data_dir;
	pthread_mutex_t lock;
	struct dkim_domain *domains[DKIM_KEYS_CACHE_MAX];
	size_t ndomains;
};

struct dkim_keys *dkim_keys_new(const char *data_dir)
{
	struct dkim_keys *keys = xcalloc(1, sizeof(*keys));
	keys->data_dir = xstrdup(data_dir);
	pthread_mutex_init(&keys->lock, NULL);
	return keys;
}

static void dkim_domain_clear(struct dkim_domain *d)
{
	for (size_t i = 0; i < d->nkeys; i++) {
		EVP_PKEY_free(d->keys[i].pkey);
		free(d->selectors[i]);
	}
	d->nkeys = 0;
}

static void dkim_keys_drop_all(struct dkim_keys *keys)
{
	for (size_t i = 0; i < keys->ndomains; i++) {
		dkim_domain_clear(keys->domains[i]);
		free(keys->domains[i]->domain);
		free(keys->domains[i]);
	}
	keys->ndomains = 0;
}

void dkim_keys_free(struct dkim_keys **keys)
{
	if (*keys == NULL)
		return;
	dkim_keys_drop_all(*keys);
	pthread_mutex_destroy(&(*keys)->lock);
	free((*keys)->data_dir);
	free(*keys);
	*keys = NULL;
}

/* A PEM pass phrase callback that declines: our keys are not encrypted, and OpenSSL must
 * never prompt on a terminal from inside the server. */
static int dkim_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

static EVP_PKEY *dkim_read_key(const char *path, enum dkim_algorithm alg)
{
	BIO *bio = BIO_new_file(path, "r");
	if (bio == NULL)
		return NULL;
	EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, dkim_no_password, NULL);
	BIO_free(bio);
	int want = alg == DKIM_ALG_ED25519 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA;
	if (pkey != NULL && EVP_PKEY_get_base_id(pkey) != want) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	return pkey;
}

/* (Re)read d's key files. -1 with *error_r when one cannot be read. */
static int dkim_domain_load(struct dkim_keys *keys, struct dkim_domain *d, const char **error_r)
{
	dkim_domain_clear(d);
	struct dkim_entry entries[DKIM_KEYS_LOAD_MAX];
	int n = dkim_domain_entries(keys->data_dir, d->domain, entries, DKIM_KEYS_LOAD_MAX);
	if (n < 0) {
		*error_r = dkim_keys_fail("cannot read the DKIM keys of %s: %s", d->domain,
		                          strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char name[128], path[DKIM_PATH_MAX];
		EVP_PKEY *pkey = dkim_key_name(name, entries[i].selector, entries[i].alg) == 0 &&
		                         dkim_path(path, keys->data_dir, d->domain, name) == 0
		                     ? dkim_read_key(path, entries[i].alg)
		                     : NULL;
		if (pkey == NULL) {
			*error_r =
			    dkim_keys_fail("cannot read the DKIM key %s/%s", d->domain, name);
			dkim_domain_clear(d);
			return -1;
		}
		d->selectors[d->nkeys] = xstrdup(entries[i].selector);
		d->keys[d->nkeys] =
		    (struct dkim_key){d->domain, d->selectors[d->nkeys], entries[i].alg, pkey};
		d->nkeys++;
	}
	return 0;
}

static bool dkim_same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* The cached entry for domain, (re)loaded when its directory changed. Under the lock.
 * NULL with *error_r on a read error. */
static struct dkim_domain *dkim_keys_lookup(struct dkim_keys *keys, const char *domain,
                                            const struct stat *st, const char **error_r)
{
	struct dkim_domain *d = NULL;
	for (size_t i = 0; i < keys->ndomains && d == NULL; i++)
		if (strcmp(keys->domains[i]->domain, domain) == 0)
			d = keys->domains[i];
	if (d != NULL && d->stable && dkim_same_time(&d->mtime, &st->st_mtim) &&
	    dkim_same_time(&d->ctime, &st->st_ctim) && d->dev == st->st_dev && d->ino == st->st_ino)
		return d;
	if (d == NULL) {
		if (keys->ndomains == DKIM_KEYS_CACHE_MAX)
			dkim_keys_drop_all(keys);
		d = xcalloc(1, sizeof(*d));
		d->domain = xstrdup(domain);
		keys->domains[keys->ndomains++] = d;
	}
	d->mtime = st->st_mtim;
	d->ctime = st->st_ctim;
	d->dev = st->st_dev;
	d->ino = st->st_ino;
	/* A change within the same tick of the file system's clock leaves the times as they
	 * were: trust them only once they are 2 s old, and read again until then. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	d->stable = now.tv_sec - st->st_mtim.tv_sec > 2 && now.tv_sec - st->st_ctim.tv_sec > 2;
	if (dkim_domain_load(keys, d, error_r) < 0) {
		d->stable = false;
		return NULL;
	}
	return d;
}

int dkim_keys_sign(struct dkim_keys *keys, const unsigned char *msg, size_t len, time_t now,
                   struct buf *out, const char **error_r)
{
	struct arena *arena = arena_new(4096);
	const char *domain = dkim_sign_domain(arena, msg, len);
	char path[DKIM_PATH_MAX];
	struct stat st;
	/* No key for the From: domain: the nearest parent domain's (RFC 6376 §3.5 lets d= be a
	 * parent of the From domain, and DMARC's relaxed alignment accepts it), so a bounce from
	 * MAILER-DAEMON@mx.example.org is signed with example.org's key. Never a bare TLD. */
	while (domain != NULL && (dkim_path(path, keys->data_dir, domain, NULL) < 0 ||
	                          stat(path, &st) != 0 || !S_ISDIR(st.st_mode))) {
		const char *dot = strchr(domain, '.');
		domain = dot != NULL && strchr(dot + 1, '.') != NULL ? dot + 1 : NULL;
	}
	if (domain == NULL) {
		arena_free(&arena);
		return 0;
	}
	/* copy the keys out (references) so that signing runs without the lock */
	struct dkim_key use[DKIM_KEYS_LOAD_MAX];
	size_t n = 0;
	pthread_mutex_lock(&keys->lock);
	struct dkim_domain *d = dkim_keys_lookup(keys, domain, &st, error_r);
	for (size_t i = 0; d != NULL && i < d->nkeys; i++) {
		use[n] = d->keys[i];
		use[n].domain = arena_strdup(arena, d->keys[i].domain);
		use[n].selector = arena_strdup(arena, d->keys[i].selector);
		EVP_PKEY_up_ref(use[n].pkey);
		n++;
	}
	pthread_mutex_unlock(&keys->lock);
	int ret = d == NULL ? -1 : 0;
	if (d != NULL && n > 0)
		ret = dkim_sign(msg, len, use, n, now, out, error_r);
	for (size_t i = 0; i < n; i++)
		EVP_PKEY_free(use[i].pkey);
	arena_free(&arena);
	return ret;
}
