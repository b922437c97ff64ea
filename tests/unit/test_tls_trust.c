/* The shared certificate stores: one per ca_file for the whole process, the
 * system's alone without one, and a ca_file that cannot be loaded refused
 * with its path, then loaded once it is fixed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls_trust.h"
#include "util.h"

/* A self-signed CA certificate, made here so no key lives in the tree. */
static X509 *make_ca(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	assert_non_null(key);
	assert_non_null(cert);
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)"godwit test CA", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	X509_set_pubkey(cert, key);
	assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
	EVP_PKEY_free(key);
	return cert;
}

static void write_pem(const char *path, X509 *cert)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, cert), 1);
	fclose(f);
}

static bool store_holds(X509_STORE *store, X509 *cert)
{
	STACK_OF(X509_OBJECT) *objects = X509_STORE_get0_objects(store);
	for (int i = 0; i < sk_X509_OBJECT_num(objects); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i));
		if (x != NULL && X509_cmp(x, cert) == 0)
			return true;
	}
	return false;
}

static void test_one_store_per_ca_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/gw-trust-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = gw_xasprintf("%s/ca.pem", dir);
	X509 *ca = make_ca();
	write_pem(path, ca);

	char *error = NULL;
	X509_STORE *system1 = gw_tls_trust_store(NULL, &error);
	X509_STORE *system2 = gw_tls_trust_store("", &error); /* "" is no ca_file */
	X509_STORE *with1 = gw_tls_trust_store(path, &error);
	X509_STORE *with2 = gw_tls_trust_store(path, &error);
	assert_null(error);
	assert_non_null(system1);
	assert_ptr_equal(system1, system2); /* loaded once, shared */
	assert_ptr_equal(with1, with2);
	assert_ptr_not_equal(system1, with1);
	assert_true(store_holds(with1, ca));
	assert_false(store_holds(system1, ca)); /* a ca_file never reaches other stores */
	X509_STORE_free(system1);
	X509_STORE_free(system2);
	X509_STORE_free(with1);
	X509_STORE_free(with2);

	X509_free(ca);
	unlink(path);
	rmdir(dir);
	free(path);
}

static void test_unloadable_ca_file_is_refused_until_fixed(void **state)
{
	(void)state;
	char dir[] = "/tmp/gw-trust-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = gw_xasprintf("%s/ca.pem", dir);
	char *expected = gw_xasprintf("cannot load ca_file %s: ", path);

	char *error = NULL;
	assert_null(gw_tls_trust_store(path, &error)); /* missing */
	assert_non_null(error);
	assert_memory_equal(error, expected, strlen(expected));
	free(error);
	error = NULL;

	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	assert_null(gw_tls_trust_store(path, &error)); /* not PEM */
	assert_non_null(error);
	assert_memory_equal(error, expected, strlen(expected));
	free(error);
	error = NULL;

	X509 *ca = make_ca();
	write_pem(path, ca);
	X509_STORE *store = gw_tls_trust_store(path, &error); /* fixed: loads now */
	assert_null(error);
	assert_non_null(store);
	assert_true(store_holds(store, ca));
	X509_STORE_free(store);

	X509_free(ca);
	unlink(path);
	rmdir(dir);
	free(expected);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_one_store_per_ca_file),
	        cmocka_unit_test(test_unloadable_ca_file_is_refused_until_fixed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
