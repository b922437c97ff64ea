/* Shared certificate stores (tls_trust.h). */
#include "tls_trust.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "util.h"

/* One loaded store per ca_file asked for; a run names one or two. */
struct trust_entry {
	char *ca_file; /* NULL: the system's store alone */
	X509_STORE *store;
	struct trust_entry *next;
};

static pthread_mutex_t trust_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trust_entry *trust_entries;

static bool same_file(const char *x, const char *y)
{
	return x == NULL ? y == NULL : y != NULL && strcmp(x, y) == 0;
}

static void trust_free_all(void)
{
	pthread_mutex_lock(&trust_lock);
	while (trust_entries != NULL) {
		struct trust_entry *e = trust_entries;
		trust_entries = e->next;
		X509_STORE_free(e->store);
		free(e->ca_file);
		free(e);
	}
	pthread_mutex_unlock(&trust_lock);
}

/* At exit, for leak checkers: every connection is closed by then. */
static void register_cleanup(void)
{
	atexit(trust_free_all);
}

static char *load_failure(const char *ca_file)
{
	char why[256] = "unknown error";
	unsigned long code = ERR_get_error(); /* the first: the most specific */
	if (code != 0)
		ERR_error_string_n(code, why, sizeof(why));
	ERR_clear_error();
	return gw_xasprintf("cannot load ca_file %s: %s", ca_file, why);
}

/* A new store: the system's trust (a system without one still verifies
 * against ca_file), then ca_file. */
static X509_STORE *load_store(const char *ca_file, char **error)
{
	X509_STORE *store = X509_STORE_new();
	if (store == NULL) {
		*error = gw_xstrdup("cannot create a certificate store");
		return NULL;
	}
	X509_STORE_set_default_paths(store);
	ERR_clear_error();
	if (ca_file != NULL && X509_STORE_load_locations(store, ca_file, NULL) != 1) {
		*error = load_failure(ca_file);
		X509_STORE_free(store);
		return NULL;
	}
	return store;
}

X509_STORE *gw_tls_trust_store(const char *ca_file, char **error)
{
	static pthread_once_t registered = PTHREAD_ONCE_INIT;
	pthread_once(&registered, register_cleanup);
	if (ca_file != NULL && ca_file[0] == '\0')
		ca_file = NULL;
	pthread_mutex_lock(&trust_lock);
	struct trust_entry *e = trust_entries;
	while (e != NULL && !same_file(e->ca_file, ca_file))
		e = e->next;
	if (e == NULL) {
		/* Loaded under the lock: connections asking at once wait for one load. */
		X509_STORE *store = load_store(ca_file, error);
		if (store != NULL) {
			e = gw_xcalloc(1, sizeof(*e));
			*e = (struct trust_entry){.ca_file = ca_file ? gw_xstrdup(ca_file) : NULL,
			                          .store = store,
			                          .next = trust_entries};
			trust_entries = e;
		}
	}
	X509_STORE *store = e != NULL && X509_STORE_up_ref(e->store) == 1 ? e->store : NULL;
	pthread_mutex_unlock(&trust_lock);
	if (e != NULL && store == NULL)
		*error = gw_xstrdup("cannot share a certificate store");
	return store;
}
