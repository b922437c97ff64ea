/* secret.c: ${ENV}, ${file:/path}, literals; every resolved value is
 * registered with the log so that no log line shows it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "secret.h"
#include "util.h"

static char temp_dir[] = "/tmp/gw-test-secret-XXXXXX";

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(temp_dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = gw_xasprintf("rm -rf '%s'", temp_dir);
	int rc = system(cmd);
	free(cmd);
	gw_log_clear_secrets();
	return rc == 0 ? 0 : -1;
}

/* Writes @p len bytes to a file in the test folder; returns its path (free it). */
static char *write_temp(const char *name, const char *data, size_t len)
{
	char *path = gw_xasprintf("%s/%s", temp_dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static char *resolve_ok(const char *text)
{
	char *out = NULL, *error = NULL;
	if (!gw_secret_resolve(text, &out, &error))
		fail_msg("resolving '%s' failed: %s", text, error);
	assert_null(error);
	assert_non_null(out);
	return out;
}

static void resolve_fails(const char *text, const char *expected_error)
{
	char *out = (char *)"untouched", *error = NULL;
	assert_false(gw_secret_resolve(text, &out, &error));
	assert_null(out);
	assert_non_null(error);
	assert_string_equal(error, expected_error);
	free(error);
}

/* The log masks @p value: it was registered. */
static void assert_redacted(const char *value)
{
	char *line = gw_xasprintf("before %s after", value);
	char *masked = gw_log_redact(line);
	assert_string_equal(masked, "before *** after");
	free(masked);
	free(line);
}

static void test_is_reference(void **state)
{
	(void)state;
	assert_true(gw_secret_is_reference("${X}"));
	assert_true(gw_secret_is_reference("${file:/x}"));
	assert_true(gw_secret_is_reference("${unterminated"));
	assert_false(gw_secret_is_reference("plain"));
	assert_false(gw_secret_is_reference("$X"));
	assert_false(gw_secret_is_reference(" ${X}"));
	assert_false(gw_secret_is_reference("$${X}"));
	assert_false(gw_secret_is_reference(""));
}

static void test_env(void **state)
{
	(void)state;
	setenv("GW_TEST_SECRET_PW", "s3cr3t-env-value", 1);
	char *v = resolve_ok("${GW_TEST_SECRET_PW}");
	assert_string_equal(v, "s3cr3t-env-value");
	assert_redacted("s3cr3t-env-value");
	free(v);
	setenv("_lower_1", "another-value", 1);
	v = resolve_ok("${_lower_1}");
	assert_string_equal(v, "another-value");
	free(v);
}

static void test_env_errors(void **state)
{
	(void)state;
	unsetenv("GW_TEST_NOT_SET");
	resolve_fails("${GW_TEST_NOT_SET}", "environment variable GW_TEST_NOT_SET is not set");
	setenv("GW_TEST_EMPTY", "", 1);
	resolve_fails("${GW_TEST_EMPTY}", "environment variable GW_TEST_EMPTY is empty");
	resolve_fails("${}",
	              "invalid secret reference '${}': expected ${ENV_NAME} or ${file:/path}");
	resolve_fails("${1ABC}",
	              "invalid secret reference '${1ABC}': expected ${ENV_NAME} or ${file:/path}");
	resolve_fails("${A-B}",
	              "invalid secret reference '${A-B}': expected ${ENV_NAME} or ${file:/path}");
	resolve_fails("${ A}",
	              "invalid secret reference '${ A}': expected ${ENV_NAME} or ${file:/path}");
	resolve_fails("${PW",
	              "invalid secret reference '${PW': expected ${ENV_NAME} or ${file:/path}");
	resolve_fails("${PW}x",
	              "invalid secret reference '${PW}x': expected ${ENV_NAME} or ${file:/path}");
	resolve_fails("${env:PW}", "invalid secret reference '${env:PW}': expected ${ENV_NAME} or "
	                           "${file:/path}");
}

static void file_case(const char *name, const char *data, size_t len, const char *expected)
{
	char *path = write_temp(name, data, len);
	char *ref = gw_xasprintf("${file:%s}", path);
	char *v = resolve_ok(ref);
	assert_string_equal(v, expected);
	free(v);
	free(ref);
	free(path);
}

static void test_file(void **state)
{
	(void)state;
	file_case("lf", "file-secret-1\n", 14, "file-secret-1");
	file_case("crlf", "file-secret-2\r\n", 15, "file-secret-2");
	file_case("none", "file-secret-3", 13, "file-secret-3");
	file_case("two", "file-secret-4\n\n", 15, "file-secret-4\n"); /* only one stripped */
	file_case("cr-only", "file-secret-5\r", 14, "file-secret-5\r");
	file_case("inner", "line1\nline2\n", 12, "line1\nline2");
	file_case("spaces", "  padded  \n", 11, "  padded  ");
	assert_redacted("file-secret-1");
	assert_redacted("file-secret-2");
	assert_redacted("  padded  ");
}

static void test_file_errors(void **state)
{
	(void)state;
	resolve_fails("${file:/nonexistent/gw/secret}",
	              "cannot read secret file /nonexistent/gw/secret: No such file or directory");
	resolve_fails("${file:}", "secret reference ${file:} names no file");

	char *ref = gw_xasprintf("${file:%s}", temp_dir);
	char *expected = gw_xasprintf("cannot read secret file %s: Is a directory", temp_dir);
	resolve_fails(ref, expected);
	free(ref);
	free(expected);

	char *path = write_temp("empty", "\n", 1);
	ref = gw_xasprintf("${file:%s}", path);
	expected = gw_xasprintf("secret file %s is empty", path);
	resolve_fails(ref, expected);
	free(ref);
	free(expected);
	free(path);

	path = write_temp("nul", "ab\0cd", 5);
	ref = gw_xasprintf("${file:%s}", path);
	expected = gw_xasprintf("secret file %s contains a NUL byte", path);
	resolve_fails(ref, expected);
	free(ref);
	free(expected);
	free(path);

	size_t big = 64 * 1024 + 1;
	char *data = gw_xmalloc(big);
	memset(data, 'x', big);
	path = write_temp("big", data, big);
	free(data);
	ref = gw_xasprintf("${file:%s}", path);
	expected = gw_xasprintf("secret file %s is larger than 65536 bytes", path);
	resolve_fails(ref, expected);
	free(ref);
	free(expected);
	free(path);
}

static void test_literal(void **state)
{
	(void)state;
	char *v = resolve_ok("literal-password");
	assert_string_equal(v, "literal-password");
	assert_redacted("literal-password");
	free(v);
	v = resolve_ok("$${NOT_A_REFERENCE}");
	assert_string_equal(v, "${NOT_A_REFERENCE}");
	free(v);
	v = resolve_ok("pa$$word");
	assert_string_equal(v, "pa$$word");
	free(v);
}

/* End to end: whatever a caller logs after resolving, the value never appears. */
static void test_never_logged(void **state)
{
	(void)state;
	setenv("GW_TEST_LOGGED_PW", "Tr0ub4dor&3", 1);
	char *v = resolve_ok("${GW_TEST_LOGGED_PW}");
	char *log_path = gw_xasprintf("%s/log.txt", temp_dir);
	FILE *f = fopen(log_path, "w+");
	assert_non_null(f);
	gw_log_set_stream(f);
	gw_log(NULL, GW_LOG_ERROR, "login with %s failed", v);
	gw_log_set_stream(NULL);
	rewind(f);
	char line[512] = {0};
	size_t n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	assert_true(n > 0);
	assert_null(strstr(line, "Tr0ub4dor&3"));
	assert_non_null(strstr(line, "login with *** failed"));
	free(log_path);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_is_reference), cmocka_unit_test(test_env),
	        cmocka_unit_test(test_env_errors),   cmocka_unit_test(test_file),
	        cmocka_unit_test(test_file_errors),  cmocka_unit_test(test_literal),
	        cmocka_unit_test(test_never_logged),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
