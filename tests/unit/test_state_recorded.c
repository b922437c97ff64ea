/* gw_state_done_sink_ids: the destination ids a sink's lookup must not hand
 * out again after a crash (done records with the same Message-ID, or none,
 * and size; pending ones and other folders' records are not listed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "state.h"
#include "util.h"

static char dir[] = "/tmp/gw-test-recorded-XXXXXX";
static char path[600];

static int setup(void **unused)
{
	(void)unused;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state.db", dir);
	return 0;
}

static int teardown(void **unused)
{
	(void)unused;
	const char *suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char p[700];
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static const struct gw_state_folder_key inbox = {"p1", "alice@example.org", "INBOX"};
static const struct gw_state_folder_key other = {"p1", "alice@example.org", "Other"};

static struct gw_state_record rec(uint32_t uid, const char *sink_folder, const char *sink_id,
                                  const char *message_id, uint64_t size)
{
	return (struct gw_state_record){.uidvalidity = 5,
	                                .uid = uid,
	                                .sink_folder = sink_folder,
	                                .sink_id = sink_id,
	                                .size = size,
	                                .sha256_hex = "00",
	                                .message_id = message_id,
	                                .internal_date = 1000};
}

static void collect(const char *sink_folder, const char *sink_id, void *arg)
{
	gw_buf_printf(arg, "[%s %s]", sink_folder, sink_id);
}

static const char *listed(struct gw_state *st, const struct gw_state_folder_key *key,
                          const char *message_id, uint64_t size)
{
	static char text[512];
	struct gw_buf out = {0};
	gw_buf_puts(&out, "");
	char *err = NULL;
	if (!gw_state_done_sink_ids(st, key, message_id, size, collect, &out, &err))
		fail_msg("done_sink_ids: %s", err);
	snprintf(text, sizeof(text), "%s", out.data);
	gw_buf_free(&out);
	return text;
}

static void test_done_sink_ids(void **unused)
{
	(void)unused;
	struct gw_state *st = NULL;
	char *err = NULL;
	if (!gw_state_open(path, &st, &err))
		fail_msg("open: %s", err);
	struct gw_state_record done[] = {
	        rec(1, "INBOX", "7:1", "<a@x>", 100), rec(2, "INBOX", "7:2", "<a@x>", 100),
	        rec(3, "INBOX", "7:3", "<a@x>", 101), rec(4, "INBOX", "7:4", NULL, 100),
	        rec(5, "INBOX", "", NULL, 100),
	};
	assert_true(gw_state_mark_done(st, &inbox, done, 5, &err));
	struct gw_state_record pending = rec(6, NULL, NULL, "<a@x>", 100);
	assert_true(gw_state_mark_pending(st, &inbox, &pending, 1, &err));
	struct gw_state_record elsewhere = rec(1, "Other", "9:1", "<a@x>", 100);
	assert_true(gw_state_mark_done(st, &other, &elsewhere, 1, &err));

	assert_string_equal(listed(st, &inbox, "<a@x>", 100), "[INBOX 7:1][INBOX 7:2]");
	assert_string_equal(listed(st, &inbox, "<a@x>", 101), "[INBOX 7:3]");
	assert_string_equal(listed(st, &inbox, NULL, 100), "[INBOX 7:4][INBOX ]");
	assert_string_equal(listed(st, &inbox, "<b@x>", 100), "");
	assert_string_equal(listed(st, &other, "<a@x>", 100), "[Other 9:1]");
	gw_state_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_done_sink_ids),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
