/* The certificate stores TLS connections verify against, loaded once per
 * process and shared by every connection that asks for the same one: the
 * system's trust store (OpenSSL's default file and directory), plus a
 * profile's ca_file when it names one.
 *
 * Why: loading Debian's bundle (144 certificates) takes about 19 ms with
 * OpenSSL 3.0, and every connection of every mailbox paid it in its own
 * SSL_CTX (bench/PROFILE.md, twelfth pass). An X509_STORE is reference
 * counted and locks itself, so connections on any thread can share one. */
#ifndef GODWIT_TLS_TRUST_H
#define GODWIT_TLS_TRUST_H

#include <openssl/x509.h>

/* The store for @p ca_file (NULL or "": the system's alone), loaded on first
 * use; a new reference the caller frees (X509_STORE_free) or hands to
 * SSL_CTX_set_cert_store. NULL if ca_file cannot be loaded, with *error
 * saying why ("cannot load ca_file <path>: <reason>"); not remembered, so a
 * fixed file loads on the next try. */
X509_STORE *gw_tls_trust_store(const char *ca_file, char **error);

#endif
