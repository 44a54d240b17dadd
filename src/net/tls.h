/* OpenSSL setup for servers: a context with TLS 1.2+ and Mozilla's intermediate ciphers,
 * certificates per SNI name, loaded from PEM
 * files (and reloaded on SIGHUP), and generation of a self-signed certificate for first runs.
 * Only net/ sees OpenSSL types; others use the opaque struct. */
#ifndef POSTHORN_NET_TLS_H
#define POSTHORN_NET_TLS_H

struct tls_ctx;

/* Load cert chain + key. Returns a context (refcount 1) or NULL with *error_r (static or
 * thread-local text). */
struct tls_ctx *tls_ctx_load(const char *cert_path, const char *key_path, const char **error_r);
/* Add a certificate for SNI name (RFC 6066 §3; an exact host name, or "*.domain" for any one
 * label in front of domain) to a server context from tls_ctx_load(), before it is shared.
 * A client that names it gets this certificate; one that names nothing we know, or no name,
 * gets the default. key_path NULL or "": the key is in the cert file. 0, or -1 with
 * *error_r (the context is unchanged). */
int tls_ctx_add_sni(struct tls_ctx *ctx, const char *name, const char *cert_path,
                    const char *key_path, const char **error_r) __attribute__((warn_unused_result));
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_unref(struct tls_ctx **ctx);
/* The OpenSSL SSL_CTX (as void * so this header needs no OpenSSL include). */
void *tls_ctx_ssl_ctx(struct tls_ctx *ctx);

/* A client context for outbound connections (SMTP to other servers): TLS 1.2 or later, the
 * system's trusted CAs (/etc/ssl/certs) plus, when ca_file is not NULL or "", the CAs in that
 * PEM file (tests, private CAs), and DANE support. Verification is chosen per connection
 * (conn_start_tls_client). NULL with *error_r when ca_file cannot be loaded. */
struct tls_ctx *tls_client_ctx_new(const char *ca_file, const char **error_r);

/* Write a new RSA-2048 key (mode 0600) and a self-signed certificate for hostname valid for
 * ten years. 0 ok, -1 with *error_r. */
int tls_generate_self_signed(const char *cert_path, const char *key_path, const char *hostname,
                             const char **error_r);

#endif
