/* Log lines: format, levels, redaction of registered secrets, one line per call
 * even with several threads, error recording, cancellation, the host table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <godwit/plugin.h>
#include <godwit/types.h>

#include "imap_client.h"
#include "log.h"
#include "util.h"

static FILE *capture;

static int open_capture(void **state)
{
	(void)state;
	capture = tmpfile();
	assert_non_null(capture);
	gw_log_set_stream(capture);
	gw_log_set_level(GW_LOG_INFO);
	gw_log_clear_secrets();
	return 0;
}

static int close_capture(void **state)
{
	(void)state;
	gw_log_set_stream(NULL);
	fclose(capture);
	capture = NULL;
	gw_log_clear_secrets();
	return 0;
}

/* Everything written so far. Caller frees. */
static char *captured(void)
{
	fflush(capture);
	long size = ftell(capture);
	assert_true(size >= 0);
	char *text = gw_xmalloc((size_t)size + 1);
	rewind(capture);
	size_t n = fread(text, 1, (size_t)size, capture);
	assert_int_equal(n, (size_t)size);
	text[n] = '\0';
	fseek(capture, 0, SEEK_END);
	return text;
}

/* "2026-11-26T04:31:02Z " */
static bool is_timestamp(const char *s)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:ddZ ";
	for (size_t i = 0; i < sizeof(pattern) - 1; i++) {
		if (pattern[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pattern[i])
			return false;
	}
	return true;
}

/* The captured output with each line's timestamp checked and removed. */
static char *captured_without_timestamps(void)
{
	char *text = captured();
	struct gw_buf out = {0};
	for (char *line = text; *line != '\0';) {
		char *end = strchr(line, '\n');
		assert_non_null(end);
		assert_true(end - line >= 21);
		assert_true(is_timestamp(line));
		gw_buf_append(&out, line + 21, (size_t)(end - line - 21) + 1);
		line = end + 1;
	}
	free(text);
	return out.data != NULL ? out.data : gw_xstrdup("");
}

static void test_format_with_full_context(void **state)
{
	(void)state;
	struct gw_ctx ctx = {.pipeline = "dovecot-to-exo",
	                     .mailbox = "ann@example.org",
	                     .folder = "INBOX/Archiv 2019"};
	gw_log(&ctx, GW_LOG_INFO, "copied %d of %d", 3, 7);
	gw_log(&ctx, GW_LOG_ERROR, "failed");
	char *out = captured_without_timestamps();
	assert_string_equal(out,
	                    "info [dovecot-to-exo] ann@example.org INBOX/Archiv 2019: copied 3 "
	                    "of 7\n"
	                    "error [dovecot-to-exo] ann@example.org INBOX/Archiv 2019: failed\n");
	free(out);
}

static void test_format_leaves_out_unknown_parts(void **state)
{
	(void)state;
	struct gw_ctx only_mailbox = {.mailbox = "bob@example.org"};
	struct gw_ctx only_pipeline = {.pipeline = "p1"};
	struct gw_ctx empty = {0};
	gw_log(NULL, GW_LOG_WARN, "no context");
	gw_log(&only_mailbox, GW_LOG_INFO, "m");
	gw_log(&only_pipeline, GW_LOG_INFO, "p");
	gw_log(&empty, GW_LOG_INFO, "e");
	char *out = captured_without_timestamps();
	assert_string_equal(out, "warn no context\n"
	                         "info bob@example.org: m\n"
	                         "info [p1]: p\n"
	                         "info e\n");
	free(out);
}

static void test_newlines_cannot_forge_lines(void **state)
{
	(void)state;
	gw_log(NULL, GW_LOG_INFO, "server said: a\r\nerror fake line\n");
	char *out = captured_without_timestamps();
	assert_string_equal(out, "info server said: a\\x0d\\x0aerror fake line\\x0a\n");
	free(out);
}

/* Folder and mailbox names come from servers and CSV files: control
 * characters in them are written visibly, never raw. */
static void test_context_cannot_forge_lines(void **state)
{
	(void)state;
	struct gw_ctx ctx = {.pipeline = "p", .mailbox = "a@b", .folder = "x\r\nwarn fake\x1b[2J"};
	gw_log(&ctx, GW_LOG_INFO, "copied");
	char *out = captured_without_timestamps();
	assert_string_equal(out, "info [p] a@b x\\x0d\\x0awarn fake\\x1b[2J: copied\n");
	free(out);
}

static void test_level_filter(void **state)
{
	(void)state;
	gw_log_set_level(GW_LOG_WARN);
	assert_int_equal(gw_log_get_level(), GW_LOG_WARN);
	gw_log(NULL, GW_LOG_INFO, "hidden");
	gw_log(NULL, GW_LOG_DEBUG, "hidden");
	gw_log(NULL, GW_LOG_WARN, "shown");
	gw_log(NULL, GW_LOG_ERROR, "shown too");
	gw_log_set_level(GW_LOG_TRACE);
	gw_log(NULL, GW_LOG_TRACE, "trace shown");
	char *out = captured_without_timestamps();
	assert_string_equal(out, "warn shown\nerror shown too\ntrace trace shown\n");
	free(out);
}

static void test_parse_level(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum gw_log_level level;
	} good[] = {{"error", GW_LOG_ERROR}, {"warn", GW_LOG_WARN},   {"WARNING", GW_LOG_WARN},
	            {"Info", GW_LOG_INFO},   {"debug", GW_LOG_DEBUG}, {"trace", GW_LOG_TRACE}};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		enum gw_log_level level = GW_LOG_ERROR;
		assert_true(gw_log_parse_level(good[i].name, &level));
		assert_int_equal(level, good[i].level);
	}
	enum gw_log_level level = GW_LOG_INFO;
	assert_false(gw_log_parse_level("verbose", &level));
	assert_false(gw_log_parse_level("", &level));
	assert_false(gw_log_parse_level(NULL, &level));
	assert_int_equal(level, GW_LOG_INFO);
}

static void test_registered_secrets_are_masked(void **state)
{
	(void)state;
	gw_log_register_secret("hunter22");
	gw_log_register_secret("s3cr3t-token");
	gw_log_register_secret("abc"); /* too short: would mask noise */
	struct gw_ctx ctx = {.mailbox = "hunter22@example.org"};
	gw_log(&ctx, GW_LOG_INFO, "LOGIN ann hunter22 and hunter22hunter22, token=%s, abc",
	       "s3cr3t-token");
	char *out = captured_without_timestamps();
	assert_string_equal(out,
	                    "info ***@example.org: LOGIN ann *** and ******, token=***, abc\n");
	free(out);
	char *masked = gw_log_redact("x hunter22 y");
	assert_string_equal(masked, "x *** y");
	free(masked);
}

static void test_longest_secret_wins(void **state)
{
	(void)state;
	gw_log_register_secret("pass");
	gw_log_register_secret("password123");
	char *masked = gw_log_redact("password123 pass passw");
	assert_string_equal(masked, "*** *** ***w");
	free(masked);
}

static void test_clear_secrets(void **state)
{
	(void)state;
	gw_log_register_secret("topsecret");
	gw_log_clear_secrets();
	char *text = gw_log_redact("topsecret");
	assert_string_equal(text, "topsecret");
	free(text);
}

static void test_fail_records_and_logs_at_debug(void **state)
{
	(void)state;
	gw_log_register_secret("pa55word");
	struct gw_ctx ctx = {.mailbox = "ann@example.org"};
	gw_status st =
	        gw_fail(&ctx, GW_ERR_AUTH, "login refused for %s with %s", "ann", "pa55word");
	assert_int_equal(st, GW_ERR_AUTH);
	assert_int_equal(ctx.status, GW_ERR_AUTH);
	assert_string_equal(ctx.error, "login refused for ann with ***");
	char *quiet = captured();
	assert_string_equal(quiet, ""); /* level info: the debug line is not written */
	free(quiet);

	gw_log_set_level(GW_LOG_DEBUG);
	gw_fail(&ctx, GW_ERR_FOLDER, "folder %s vanished", "Junk");
	assert_int_equal(ctx.status, GW_ERR_FOLDER);
	assert_string_equal(ctx.error, "folder Junk vanished");
	char *out = captured_without_timestamps();
	assert_string_equal(out, "debug ann@example.org: folder error: folder Junk vanished\n");
	free(out);
	assert_int_equal(gw_fail(NULL, GW_ERR_SESSION, "no context"), GW_ERR_SESSION);
}

static void test_fail_truncates_long_text(void **state)
{
	(void)state;
	struct gw_ctx ctx = {0};
	char *long_text = gw_xmalloc(3000);
	memset(long_text, 'x', 2999);
	long_text[2999] = '\0';
	gw_fail(&ctx, GW_ERR_MESSAGE, "%s", long_text);
	assert_int_equal(strlen(ctx.error), sizeof(ctx.error) - 1);
	free(long_text);
}

enum { LINES_PER_THREAD = 2000, PAYLOAD = 300 };

static void *log_many(void *arg)
{
	char payload[PAYLOAD + 1];
	memset(payload, *(const char *)arg, PAYLOAD);
	payload[PAYLOAD] = '\0';
	for (int i = 0; i < LINES_PER_THREAD; i++)
		gw_log(NULL, GW_LOG_INFO, "%s", payload);
	return NULL;
}

/* Each line must be exactly one thread's payload: a line mixing A and B, or a
 * line split in two, means two writes interleaved. */
static void test_threads_do_not_interleave(void **state)
{
	(void)state;
	pthread_t a, b;
	char ca = 'A', cb = 'B';
	assert_int_equal(pthread_create(&a, NULL, log_many, &ca), 0);
	assert_int_equal(pthread_create(&b, NULL, log_many, &cb), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	char *out = captured_without_timestamps();
	size_t count_a = 0, count_b = 0;
	for (char *line = out; *line != '\0';) {
		char *end = strchr(line, '\n');
		assert_int_equal((size_t)(end - line), strlen("info ") + PAYLOAD);
		assert_memory_equal(line, "info ", 5);
		char c = line[5];
		for (char *p = line + 5; p < end; p++)
			assert_int_equal(*p, c);
		count_a += c == 'A';
		count_b += c == 'B';
		line = end + 1;
	}
	assert_int_equal(count_a, LINES_PER_THREAD);
	assert_int_equal(count_b, LINES_PER_THREAD);
	free(out);
}

static void *register_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < 500; i++) {
		char secret[32];
		snprintf(secret, sizeof(secret), "secret-%04d", i);
		gw_log_register_secret(secret);
	}
	return NULL;
}

/* Registering while another thread logs must neither crash nor leak a secret
 * that was registered before the line was written. */
static void test_register_while_logging(void **state)
{
	(void)state;
	gw_log_register_secret("early-secret");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, register_many, NULL), 0);
	for (int i = 0; i < 500; i++)
		gw_log(NULL, GW_LOG_INFO, "early-secret %d", i);
	pthread_join(t, NULL);
	gw_log(NULL, GW_LOG_INFO, "secret-0499 secret-0000");
	char *out = captured();
	assert_null(strstr(out, "early-secret"));
	assert_non_null(strstr(out, " info *** ***\n"));
	free(out);
}

static void on_signal(int signo)
{
	(void)signo;
	gw_cancel_request(1);
}

/* Cancellation is process-wide and only rises, so one test walks through it. */
static void test_cancel_levels_and_host_cancelled(void **state)
{
	(void)state;
	const struct gw_host *host = gw_host_table();
	assert_int_equal(gw_cancel_level(), 0);
	assert_false(host->cancelled(NULL));
	signal(SIGUSR1, on_signal);
	raise(SIGUSR1);
	assert_int_equal(gw_cancel_level(), 1);
	assert_true(host->cancelled(NULL));
	gw_cancel_request(2);
	assert_int_equal(gw_cancel_level(), 2);
	gw_cancel_request(1); /* a late graceful request does not undo "stop now" */
	assert_int_equal(gw_cancel_level(), 2);
	signal(SIGUSR1, SIG_DFL);
}

static void test_host_table(void **state)
{
	(void)state;
	const struct gw_host *host = gw_host_table();
	assert_int_equal(host->struct_size, sizeof(struct gw_host));
	assert_int_equal(host->abi_major, GW_ABI_MAJOR);
	assert_int_equal(host->abi_minor, GW_ABI_MINOR);
	assert_true(GW_HOST_HAS(host, log));
	assert_true(GW_HOST_HAS(host, fail));
	assert_true(GW_HOST_HAS(host, set_retry_after));
	assert_true(GW_HOST_HAS(host, cancelled));
	assert_true(GW_HOST_HAS(host, resolve_secret));
	assert_true(GW_HOST_HAS(host, free));
	assert_true(GW_HOST_HAS(host, mailbox_field));
	assert_true(GW_HOST_HAS(host, imap));
	assert_ptr_equal(host->imap, gw_imap_client_api());
	assert_ptr_equal(gw_host_table(), host);

	struct gw_ctx ctx = {.pipeline = "p"};
	host->log(&ctx, GW_LOG_INFO, "from a plugin %u", 7u);
	assert_int_equal((host->fail)(&ctx, GW_ERR_THROTTLED, "slow down"), GW_ERR_THROTTLED);
	host->set_retry_after(&ctx, 1500);
	assert_int_equal(ctx.retry_after_ms, 1500);
	assert_string_equal(ctx.error, "slow down");
	char *out = captured_without_timestamps();
	assert_string_equal(out, "info [p]: from a plugin 7\n");
	free(out);
}

static void test_host_mailbox_field(void **state)
{
	(void)state;
	const struct gw_host *host = gw_host_table();
	const char *names[] = {"SourceHost", "Quota"};
	const char *values[] = {"imap2.example.org", ""};
	struct gw_mailbox mbx = {.struct_size = sizeof(mbx),
	                         .email = "ann@example.org",
	                         .username = "ann",
	                         .extra_count = 2,
	                         .extra_names = names,
	                         .extra_values = values};
	assert_string_equal(host->mailbox_field(&mbx, "sourcehost"), "imap2.example.org");
	assert_string_equal(host->mailbox_field(&mbx, "SOURCEHOST"), "imap2.example.org");
	assert_string_equal(host->mailbox_field(&mbx, "Quota"), "");
	assert_null(host->mailbox_field(&mbx, "Source"));
	assert_null(host->mailbox_field(&mbx, NULL));
	assert_null(host->mailbox_field(NULL, "Quota"));
	struct gw_mailbox old = mbx;
	old.struct_size =
	        offsetof(struct gw_mailbox, extra_count); /* a caller from before extras */
	assert_null(host->mailbox_field(&old, "Quota"));
}

static void test_host_resolve_secret(void **state)
{
	(void)state;
	const struct gw_host *host = gw_host_table();
	struct gw_ctx ctx = {0};
	setenv("GW_TEST_LOG_SECRET", "value-from-env", 1);
	char *value = NULL;
	assert_int_equal(host->resolve_secret(&ctx, "${GW_TEST_LOG_SECRET}", &value), GW_OK);
	assert_string_equal(value, "value-from-env");
	host->free(value);
	/* A resolved secret is registered: it can no longer appear in a log line. */
	gw_log(NULL, GW_LOG_INFO, "got value-from-env");
	char *out = captured_without_timestamps();
	assert_string_equal(out, "info got ***\n");
	free(out);

	unsetenv("GW_TEST_LOG_MISSING");
	value = (char *)"untouched";
	assert_int_equal(host->resolve_secret(&ctx, "${GW_TEST_LOG_MISSING}", &value),
	                 GW_ERR_CONFIG);
	assert_null(value);
	assert_int_equal(ctx.status, GW_ERR_CONFIG);
	assert_non_null(strstr(ctx.error, "GW_TEST_LOG_MISSING"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_format_with_full_context, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_format_leaves_out_unknown_parts, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_context_cannot_forge_lines, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_newlines_cannot_forge_lines, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_level_filter, open_capture, close_capture),
	        cmocka_unit_test(test_parse_level),
	        cmocka_unit_test_setup_teardown(test_registered_secrets_are_masked, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_longest_secret_wins, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_clear_secrets, open_capture, close_capture),
	        cmocka_unit_test_setup_teardown(test_fail_records_and_logs_at_debug, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_fail_truncates_long_text, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_threads_do_not_interleave, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_register_while_logging, open_capture,
	                                        close_capture),
	        cmocka_unit_test_setup_teardown(test_host_table, open_capture, close_capture),
	        cmocka_unit_test(test_host_mailbox_field),
	        cmocka_unit_test_setup_teardown(test_host_resolve_secret, open_capture,
	                                        close_capture),
	        cmocka_unit_test(test_cancel_levels_and_host_cancelled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
