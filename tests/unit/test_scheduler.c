/* Scheduler pieces that need no server: backoff, connection budgets (with
 * real threads, and the extra slots lanes take), the final status of a mailbox, and origin keys. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "log.h"
#include "migrate.h"
#include "scheduler.h"

static void test_backoff(void **state)
{
	(void)state;
	/* Full jitter: [0, min(60 s, 1 s * 2^retry)). */
	assert_int_equal(gw_backoff_ms(0, 0, 0.0), 0);
	assert_int_equal(gw_backoff_ms(0, 0, 0.5), 500);
	assert_int_equal(gw_backoff_ms(1, 0, 0.5), 1000);
	assert_int_equal(gw_backoff_ms(3, 0, 0.999), 7992);
	assert_int_equal(gw_backoff_ms(6, 0, 0.5), 30000);
	assert_int_equal(gw_backoff_ms(7, 0, 0.5), 30000); /* capped at 60 s */
	assert_int_equal(gw_backoff_ms(40, 0, 0.9999), 59994);
	/* The server's retry-after is a floor. */
	assert_int_equal(gw_backoff_ms(0, 5000, 0.5), 5000);
	assert_int_equal(gw_backoff_ms(2, 100, 0.5), 2000);
	/* Out-of-range randomness cannot make it wait longer than the cap. */
	assert_int_equal(gw_backoff_ms(10, 0, 1.5), 0);
}

struct contender {
	struct gw_budget *budget;
	atomic_int *inside;
	atomic_int *max_inside;
	int rounds;
};

static void *contend(void *arg)
{
	struct contender *c = arg;
	for (int i = 0; i < c->rounds; i++) {
		assert_true(gw_budget_acquire(c->budget));
		int now = atomic_fetch_add(c->inside, 1) + 1;
		int seen = atomic_load(c->max_inside);
		while (now > seen && !atomic_compare_exchange_weak(c->max_inside, &seen, now)) {
		}
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 200000};
		nanosleep(&ts, NULL);
		atomic_fetch_sub(c->inside, 1);
		gw_budget_release(c->budget);
	}
	return NULL;
}

static void test_budget_never_exceeded(void **state)
{
	(void)state;
	struct gw_budget *b = gw_budget_new("source imap host", 3);
	atomic_int inside = 0, max_inside = 0;
	pthread_t threads[8];
	struct contender c = {
	        .budget = b, .inside = &inside, .max_inside = &max_inside, .rounds = 40};
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, contend, &c), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(threads[i], NULL);
	struct gw_budget_report r;
	gw_budget_describe(b, &r);
	assert_string_equal(r.key, "source imap host");
	assert_int_equal(r.limit, 3);
	assert_int_equal(r.peak, 3);
	assert_int_equal(atomic_load(&max_inside), 3);
	/* A second pipeline on the same host with a lower limit lowers it; a higher one does not.
	 */
	gw_budget_limit_min(b, 5);
	gw_budget_describe(b, &r);
	assert_int_equal(r.limit, 3);
	gw_budget_limit_min(b, 2);
	gw_budget_describe(b, &r);
	assert_int_equal(r.limit, 2);
	gw_budget_free(b);

	struct gw_budget *zero = gw_budget_new("sink", 0);
	gw_budget_describe(zero, &r);
	assert_int_equal(r.limit, 1);
	gw_budget_free(zero);
}

static void test_budget_wait_ends_on_stop(void **state)
{
	(void)state;
	struct gw_budget *b = gw_budget_new("k", 1);
	assert_true(gw_budget_acquire(b));
	gw_cancel_request(1);
	assert_false(gw_budget_acquire(b)); /* full, and a stop was requested: no slot */
	gw_budget_release(b);
	assert_true(gw_budget_acquire(b)); /* a free slot is still taken */
	gw_budget_release(b);
	gw_budget_free(b);
}

static void *wait_for_slot(void *arg)
{
	assert_true(gw_budget_acquire(arg));
	return NULL;
}

/* Lanes take extra connections only from what nobody waits for. */
static void test_budget_try_acquire_yields_to_waiters(void **state)
{
	(void)state;
	struct gw_budget *source = gw_budget_new("source", 2), *sink = gw_budget_new("sink", 1);
	assert_true(gw_budget_acquire(source));
	assert_true(gw_budget_try_acquire(source));
	assert_false(gw_budget_try_acquire(source)); /* full */
	/* Both or neither: the sink has a slot, the source none. */
	assert_false(gw_budget_acquire_pair(source, sink, false));
	assert_true(gw_budget_try_acquire(sink));
	gw_budget_release(sink);
	/* A worker waits; the slot freed next is its, never a lane's. */
	pthread_t waiter;
	assert_int_equal(pthread_create(&waiter, NULL, wait_for_slot, source), 0);
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
	nanosleep(&ts, NULL);
	gw_budget_release(source);
	assert_false(gw_budget_try_acquire(source));
	pthread_join(waiter, NULL);
	gw_budget_release(source); /* the waiter's */
	gw_budget_release(source); /* the first */
	assert_true(gw_budget_acquire_pair(source, sink, false));
	struct gw_budget_report r;
	gw_budget_describe(source, &r);
	assert_int_equal(r.peak, 2);
	gw_budget_free(source);
	gw_budget_free(sink);
}

static void test_final_status(void **state)
{
	(void)state;
	struct gw_mailbox_report r = {0};
	struct gw_folder_report *f = gw_mailbox_report_folder(&r, "INBOX");
	assert_int_equal(gw_mailbox_final_status(GW_OK, &r), GW_MAILBOX_COMPLETED);
	assert_int_equal(gw_mailbox_final_status(GW_ERR_AUTH, &r), GW_MAILBOX_FAILED);
	assert_int_equal(gw_mailbox_final_status(GW_ERR_SESSION, &r), GW_MAILBOX_FAILED);
	assert_int_equal(gw_mailbox_final_status(GW_ERR_CANCELLED, &r), GW_MAILBOX_INTERRUPTED);
	f->migrated = 3; /* it got somewhere before it stopped */
	assert_int_equal(gw_mailbox_final_status(GW_ERR_SESSION, &r), GW_MAILBOX_PARTIAL);
	assert_int_equal(gw_mailbox_final_status(GW_OK, &r), GW_MAILBOX_COMPLETED);
	gw_folder_report_fail(f, 9, "refused");
	assert_int_equal(gw_mailbox_final_status(GW_OK, &r), GW_MAILBOX_PARTIAL);
	struct gw_mailbox_report r2 = {0};
	gw_mailbox_report_folder(&r2, "A")->error = strdup("cannot select");
	assert_int_equal(gw_mailbox_final_status(GW_OK, &r2), GW_MAILBOX_PARTIAL);
	gw_mailbox_report_free(&r);
	gw_mailbox_report_free(&r2);
}

static void test_origin_key(void **state)
{
	(void)state;
	char key[25];
	/* Lower-case hex of the first 12 bytes of SHA-256("p\0a@example.org\0INBOX\01234\042"). */
	gw_origin_key("p", "a@example.org", "INBOX", 1234, 42, key);
	assert_string_equal(key, "aabcb16ee159c4fe5dd32f5b");
	gw_origin_key("pipe", "ü@x", "Ärger/Ü", UINT32_MAX, UINT32_MAX, key);
	assert_string_equal(key, "1066e4ede70e85e64e71c9cb");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_backoff),
	        cmocka_unit_test(test_budget_never_exceeded),
	        cmocka_unit_test(test_budget_try_acquire_yields_to_waiters),
	        cmocka_unit_test(test_final_status),
	        cmocka_unit_test(test_origin_key),
	        /* Last: it raises the process-wide stop level. */
	        cmocka_unit_test(test_budget_wait_ends_on_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
