/* OpenSSL server contexts and self-signed certificates (see tls.h). */
#include "net/tls.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* One SNI name (RFC 6066 §3) and the context with its certificate: an exact host name or
 * "*.domain" (any one label in front of domain). */
struct tls_sni {
	char *name;
	SSL_CTX *ssl_ctx;
};

struct tls_ctx {
	atomic_int refcount;
	SSL_CTX *ssl_ctx; /* the default certificate; its servername callback picks the others */
	struct tls_sni *sni;
	size_t sni_count;
	bool server;
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

/* Mozilla's "intermediate" server configuration (wiki.mozilla.org/Security/Server_Side_TLS,
 * version 5.7): TLS 1.2 and 1.3; for TLS 1.2 only forward-secret AEAD suites (ECDHE and
 * DHE with ffdhe2048 via dh_auto); the client picks among them (all are strong), as that
 * profile says. Each list is set explicitly so no library default widens it. */
#define TLS_INTERMEDIATE_CIPHERS                                                                   \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_INTERMEDIATE_SUITES                                                                    \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_INTERMEDIATE_GROUPS "X25519:P-256:P-384"

/* A server context with one certificate chain and key (key NULL or "": in the chain file,
 * as Postfix's combined files). NULL with *error_r. */
static SSL_CTX *tls_server_ctx_new(const char *cert_path, const char *key_path,
                                   const char **error_r)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (c == NULL) {
		*error_r = tls_error("SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(c, TLS_INTERMEDIATE_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(c, TLS_INTERMEDIATE_SUITES) != 1 ||
	    SSL_CTX_set1_groups_list(c, TLS_INTERMEDIATE_GROUPS) != 1 ||
	    SSL_CTX_set_dh_auto(c, 1) != 1) {
		*error_r = tls_error("TLS settings");
		SSL_CTX_free(c);
		return NULL;
	}
	/* No renegotiation (client-initiated renegotiation is a CPU-exhaustion lever and
	 * has had injection bugs) and no TLS compression (CRIME). */
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_clear_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_ALLOW_CLIENT_RENEGOTIATION |
	                             SSL_OP_LEGACY_SERVER_CONNECT);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(c, (const unsigned char *)"posthorn", 8);
	if (SSL_CTX_use_certificate_chain_file(c, cert_path) != 1) {
		*error_r = tls_error(cert_path);
		SSL_CTX_free(c);
		return NULL;
	}
	if (key_path == NULL || key_path[0] == '\0')
		key_path = cert_path;
	if (SSL_CTX_use_PrivateKey_file(c, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c) != 1) {
		*error_r = tls_error(key_path);
		SSL_CTX_free(c);
		return NULL;
	}
	return c;
}

/* Does the SNI entry name match host (case-insensitively)? */
static bool tls_sni_matches(const char *name, const char *host)
{
	if (strcasecmp(name, host) == 0)
		return true;
	if (name[0] != '*' || name[1] != '.')
		return false;
	const char *dot = strchr(host, '.');
	return dot != NULL && dot != host && strcasecmp(dot + 1, name + 2) == 0;
}

/* ClientHello with a server name: switch to that name's certificate. An exact name wins
 * over a wildcard; no match keeps the default. Never fails the handshake. */
static int tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
	(void)alert;
	struct tls_ctx *t = arg;
	const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (host == NULL || t->sni_count == 0)
		return SSL_TLSEXT_ERR_OK;
	SSL_CTX *pick = NULL;
	for (size_t i = 0; i < t->sni_count && pick == NULL; i++)
		if (strcasecmp(t->sni[i].name, host) == 0)
			pick = t->sni[i].ssl_ctx;
	for (size_t i = 0; i < t->sni_count && pick == NULL; i++)
		if (tls_sni_matches(t->sni[i].name, host))
			pick = t->sni[i].ssl_ctx;
	if (pick != NULL)
		SSL_set_SSL_CTX(ssl, pick);
	return SSL_TLSEXT_ERR_OK;
}

struct tls_ctx *tls_ctx_load(const char *cert_path, const char *key_path, const char **error_r)
{
	SSL_CTX *c = tls_server_ctx_new(cert_path, key_path, error_r);
	if (c == NULL)
		return NULL;
	struct tls_ctx *t = xcalloc(1, sizeof(*t));
	atomic_init(&t->refcount, 1);
	t->ssl_ctx = c;
	t->server = true;
	SSL_CTX_set_tlsext_servername_callback(c, tls_servername_cb);
	SSL_CTX_set_tlsext_servername_arg(c, t);
	return t;
}

int tls_ctx_add_sni(struct tls_ctx *ctx, const char *name, const char *cert_path,
                    const char *key_path, const char **error_r)
{
	ASSERT(ctx->server);
	SSL_CTX *c = tls_server_ctx_new(cert_path, key_path, error_r);
	if (c == NULL)
		return -1;
	ctx->sni = xrealloc(ctx->sni, (ctx->sni_count + 1) * sizeof(*ctx->sni));
	ctx->sni[ctx->sni_count].name = xstrdup(name);
	ctx->sni[ctx->sni_count].ssl_ctx = c;
	ctx->sni_count++;
	return 0;
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
		for (size_t i = 0; i < (*ctx)->sni_count; i++) {
			free((*ctx)->sni[i].name);
			SSL_CTX_free((*ctx)->sni[i].ssl_ctx);
		}
		free((*ctx)->sni);
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
	struct tls_ctx *t = xcalloc(1, sizeof(*t));
	atomic_init(&t->refcount, 1);
	t->ssl_ctx = c;
	return t;
}
