/* OpenSSL server contexts and self-signed certificates (see tls.h). */
#include "net/tls.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/xmalloc.h"
#include "core/banned.h"

struct tls_ctx {
	atomic_int refcount;
	SSL_CTX *ssl_ctx;
};

static _Thread_local char tls_error_text[256];

static const char *tls_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[200] = "";
	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	snprintf(tls_error_text, sizeof(tls_error_text), "%s%s%s", what, e ? ": " : "", detail);
	return tls_error_text;
}

struct tls_ctx *tls_ctx_load(const char *cert_path, const char *key_path, const char **error_r)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (c == NULL) {
		*error_r = tls_error("SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	/* TLS 1.2: forward-secret AEAD suites only; TLS 1.3 suites are all modern. */
	SSL_CTX_set_cipher_list(c, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20");
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                           SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(c, (const unsigned char *)"posthorn", 8);
	if (SSL_CTX_use_certificate_chain_file(c, cert_path) != 1) {
		*error_r = tls_error(cert_path);
		SSL_CTX_free(c);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(c, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c) != 1) {
		*error_r = tls_error(key_path);
		SSL_CTX_free(c);
		return NULL;
	}
	struct tls_ctx *t = xmalloc(sizeof(*t));
	atomic_init(&t->refcount, 1);
	t->ssl_ctx = c;
	return t;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx)
{
	atomic_fetch_add(&ctx->refcount, 1);
	return ctx;
}

void tls_ctx_unref(struct tls_ctx **ctx)
{
	if (*ctx == NULL)
		return;
	if (atomic_fetch_sub(&(*ctx)->refcount, 1) == 1) {
		SSL_CTX_free((*ctx)->ssl_ctx);
		free(*ctx);
	}
	*ctx = NULL;
}

void *tls_ctx_ssl_ctx(struct tls_ctx *ctx)
{
	return ctx->ssl_ctx;
}

static int tls_write_pem(const char *path, int mode, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	int ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
	                     : PEM_write_X509(f, cert);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static int tls_add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

int tls_generate_self_signed(const char *cert_path, const char *key_path, const char *hostname,
                             const char **error_r)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509 *cert = X509_new();
	int ret = -1;
	char san[300];
	if (key == NULL || cert == NULL) {
		*error_r = tls_error("key generation");
		goto out;
	}
	X509_set_version(cert, 2);
	unsigned char serial[16];
	FILE *r = fopen("/dev/urandom", "r");
	if (r == NULL || fread(serial, 1, sizeof(serial), r) != sizeof(serial)) {
		if (r != NULL)
			fclose(r);
		*error_r = "cannot read /dev/urandom";
		goto out;
	}
	fclose(r);
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
	X509_set_pubkey(cert, key);
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)hostname, -1,
	                           -1, 0);
	X509_set_issuer_name(cert, name);
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	if (tls_add_ext(cert, NID_subject_alt_name, san) < 0 ||
	    tls_add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    X509_sign(cert, key, EVP_sha256()) == 0) {
		*error_r = tls_error("certificate");
		goto out;
	}
	if (tls_write_pem(key_path, 0600, key, NULL) < 0 ||
	    tls_write_pem(cert_path, 0644, NULL, cert) < 0) {
		*error_r = "cannot write certificate or key file";
		goto out;
	}
	ret = 0;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return ret;
}

struct tls_ctx *tls_client_ctx_new(const char *ca_file, const char **error_r)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	if (c == NULL) {
		*error_r = tls_error("SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	/* Verification is decided per connection; the handshake itself never stops for it
	 * unless the connection asks (SSL_set_verify in conn_start_tls_client). */
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_default_verify_paths(c) != 1)
		ERR_clear_error(); /* no system store: only ca_file (or nothing) verifies */
	if (ca_file != NULL && ca_file[0] != '\0' &&
	    SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1) {
		*error_r = tls_error(ca_file);
		SSL_CTX_free(c);
		return NULL;
	}
	if (SSL_CTX_dane_enable(c) <= 0) {
		*error_r = tls_error("DANE");
		SSL_CTX_free(c);
		return NULL;
	}
	struct tls_ctx *t = xmalloc(sizeof(*t));
	atomic_init(&t->refcount, 1);
	t->ssl_ctx = c;
	return t;
}
