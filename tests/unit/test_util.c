/* util.c: allocation wrappers, gw_buf, value parsers, did-you-mean; diag.c formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag.h"
#include "util.h"

static void size_ok(const char *text, uint64_t expected)
{
	uint64_t v = 12345;
	if (!gw_parse_size(text, &v))
		fail_msg("gw_parse_size rejected '%s'", text);
	if (v != expected)
		fail_msg("gw_parse_size('%s') = %llu, expected %llu", text, (unsigned long long)v,
		         (unsigned long long)expected);
}

static void size_bad(const char *text)
{
	uint64_t v = 12345;
	if (gw_parse_size(text, &v))
		fail_msg("gw_parse_size accepted '%s' as %llu", text, (unsigned long long)v);
	assert_int_equal(v, 12345); /* untouched on failure */
}

static void test_size_units(void **state)
{
	(void)state;
	size_ok("0", 0);
	size_ok("100", 100);
	size_ok("100B", 100);
	size_ok("1KB", 1000);
	size_ok("1kb", 1000);
	size_ok("1KiB", 1024);
	size_ok("1kib", 1024);
	size_ok("1K", 1024);
	size_ok("1k", 1024);
	size_ok("35MB", 35000000);
	size_ok("35MiB", 36700160);
	size_ok("35M", 36700160);
	size_ok("35 MB", 35000000);
	size_ok("2GB", 2000000000ull);
	size_ok("2GiB", 2147483648ull);
	size_ok("2G", 2147483648ull);
	size_ok("1TB", 1000000000000ull);
	size_ok("1TiB", 1099511627776ull);
}

static void test_size_decimals(void **state)
{
	(void)state;
	size_ok("1.5GB", 1500000000ull);
	size_ok("1.5GiB", 1610612736ull);
	size_ok("0.5K", 512);
	size_ok("2.25MB", 2250000);
	size_ok("0.001KB", 1);
	size_ok("0.0001KB", 0); /* rounded down to whole bytes */
	size_ok("1.000000001GB", 1000000001ull);
	size_bad("1.5");            /* half a byte */
	size_bad("1.5B");           /* half a byte */
	size_bad("1.MB");           /* no digits after the point */
	size_bad(".5MB");           /* no digits before it */
	size_bad("1.0000000001GB"); /* more than 9 decimals */
}

static void test_size_rejects(void **state)
{
	(void)state;
	size_bad("");
	size_bad("MB");
	size_bad("-1");
	size_bad("+1");
	size_bad(" 1");
	size_bad("1 ");
	size_bad("1XB");
	size_bad("1MBs");
	size_bad("1 M B");
	size_bad("0x10");
	size_bad("1e6");
}

static void test_size_overflow(void **state)
{
	(void)state;
	size_ok("18446744073709551615", UINT64_MAX);
	size_bad("18446744073709551616");
	size_bad("99999999999999999999999");
	size_ok("16777215TiB", 16777215ull << 40);
	size_bad("16777216TiB"); /* exactly 2^64 */
	size_bad("18446744073709551615K");
	size_ok("16777215.999999999TiB", (16777215ull << 40) + 1099511626676ull);
}

static void duration_ok(const char *text, uint64_t expected)
{
	uint64_t v = 7;
	if (!gw_parse_duration(text, &v))
		fail_msg("gw_parse_duration rejected '%s'", text);
	if (v != expected)
		fail_msg("gw_parse_duration('%s') = %llu, expected %llu", text,
		         (unsigned long long)v, (unsigned long long)expected);
}

static void duration_bad(const char *text)
{
	uint64_t v = 7;
	if (gw_parse_duration(text, &v))
		fail_msg("gw_parse_duration accepted '%s'", text);
	assert_int_equal(v, 7);
}

static void test_duration(void **state)
{
	(void)state;
	duration_ok("45", 45000);
	duration_ok("0", 0);
	duration_ok("500ms", 500);
	duration_ok("30s", 30000);
	duration_ok("30S", 30000);
	duration_ok("5m", 300000);
	duration_ok("1h", 3600000);
	duration_ok("2d", 172800000);
	duration_ok("10 s", 10000);
	duration_ok("18446744073709551615ms", UINT64_MAX);
	duration_bad("");
	duration_bad("s");
	duration_bad("10 ");
	duration_bad("1.5s");
	duration_bad("-1s");
	duration_bad("5w");
	duration_bad("5 minutes");
	duration_bad("1h30m");
	duration_bad("18446744073709551615s"); /* overflows as milliseconds */
	duration_bad("18446744073709551616ms");
}

static void test_bool(void **state)
{
	(void)state;
	static const char *const yes[] = {"true", "TRUE", "True", "yes", "Yes", "on", "ON"};
	static const char *const no[] = {"false", "FALSE", "no", "No", "off", "OFF"};
	bool v;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		v = false;
		assert_true(gw_parse_bool(yes[i], &v));
		assert_true(v);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		v = true;
		assert_true(gw_parse_bool(no[i], &v));
		assert_false(v);
	}
	static const char *const bad[] = {"", "1", "0", "y", "n", "tru", "yess", " true", "enable"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(gw_parse_bool(bad[i], &v));
}

static void test_int(void **state)
{
	(void)state;
	int64_t v;
	assert_true(gw_parse_int("0", &v));
	assert_int_equal(v, 0);
	assert_true(gw_parse_int("993", &v));
	assert_int_equal(v, 993);
	assert_true(gw_parse_int("-42", &v));
	assert_int_equal(v, -42);
	assert_true(gw_parse_int("+7", &v));
	assert_int_equal(v, 7);
	assert_true(gw_parse_int("007", &v));
	assert_int_equal(v, 7);
	assert_true(gw_parse_int("9223372036854775807", &v));
	assert_true(v == INT64_MAX);
	assert_true(gw_parse_int("-9223372036854775808", &v));
	assert_true(v == INT64_MIN);
	v = 5;
	assert_false(gw_parse_int("9223372036854775808", &v));
	assert_false(gw_parse_int("-9223372036854775809", &v));
	assert_false(gw_parse_int("", &v));
	assert_false(gw_parse_int("-", &v));
	assert_false(gw_parse_int("+", &v));
	assert_false(gw_parse_int(" 1", &v));
	assert_false(gw_parse_int("1 ", &v));
	assert_false(gw_parse_int("1.0", &v));
	assert_false(gw_parse_int("0x10", &v));
	assert_false(gw_parse_int("12abc", &v));
	assert_false(gw_parse_int("--1", &v));
	assert_int_equal(v, 5);
}

static void date_ok(const char *text, int64_t expected)
{
	int64_t v = 1;
	if (!gw_parse_date(text, &v))
		fail_msg("gw_parse_date rejected '%s'", text);
	if (v != expected)
		fail_msg("gw_parse_date('%s') = %lld, expected %lld", text, (long long)v,
		         (long long)expected);
}

static void test_date(void **state)
{
	(void)state;
	date_ok("1970-01-01", 0);
	date_ok("2015-01-01", 1420070400);
	date_ok("2000-02-29", 951782400);  /* leap year divisible by 400 */
	date_ok("2024-02-29", 1709164800); /* ordinary leap year */
	date_ok("1969-12-31", -86400);
	date_ok("2015-01-01T10:00:00Z", 1420106400);
	date_ok("2015-01-01t10:00:00z", 1420106400);
	date_ok("2015-01-01 10:00:00Z", 1420106400);
	date_ok("2015-01-01T10:00:00.123Z", 1420106400);
	date_ok("2015-01-01T10:00:00+02:00", 1420099200);
	date_ok("2015-01-01T10:00:00-05:30", 1420126200);
	date_ok("2038-01-19T03:14:08Z", 2147483648ll); /* past 32-bit time_t */
	date_ok("2016-12-31T23:59:60Z", 1483228800);   /* leap second */

	static const char *const bad[] = {
	        "",
	        "2015",
	        "2015-1-01",
	        "2015-01-1",
	        "15-01-01",
	        "2015/01/01",
	        "2015-00-01",
	        "2015-13-01",
	        "2015-01-00",
	        "2015-01-32",
	        "2015-02-29", /* not a leap year */
	        "1900-02-29", /* divisible by 100, not by 400 */
	        "2015-04-31",
	        "2015-01-01T",
	        "2015-01-01T10:00:00", /* RFC 3339 needs an offset */
	        "2015-01-01T10:00Z",
	        "2015-01-01T24:00:00Z",
	        "2015-01-01T10:60:00Z",
	        "2015-01-01T10:00:61Z",
	        "2015-01-01T10:00:00.Z",
	        "2015-01-01T10:00:00+0200",
	        "2015-01-01T10:00:00+24:00",
	        "2015-01-01T10:00:00Zjunk",
	        "2015-01-01x",
	        "2015-01-01 ",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = 99;
		if (gw_parse_date(bad[i], &v))
			fail_msg("gw_parse_date accepted '%s'", bad[i]);
		assert_int_equal(v, 99);
	}
}

static void test_edit_distance(void **state)
{
	(void)state;
	assert_int_equal(gw_edit_distance("", ""), 0);
	assert_int_equal(gw_edit_distance("port", "port"), 0);
	assert_int_equal(gw_edit_distance("prot", "port"), 2);
	assert_int_equal(gw_edit_distance("", "abc"), 3);
	assert_int_equal(gw_edit_distance("abc", ""), 3);
	assert_int_equal(gw_edit_distance("kitten", "sitting"), 3);
	assert_int_equal(gw_edit_distance("max_sise", "max_size"), 1);
	assert_int_equal(gw_edit_distance("hots", "host"), 2);
}

static void test_did_you_mean(void **state)
{
	(void)state;
	static const char *const keys[] = {"host", "port", "tls", "master_user", "master_password",
	                                   NULL};
	assert_string_equal(gw_did_you_mean("prot", keys), "port");
	assert_string_equal(gw_did_you_mean("hots", keys), "host");
	assert_string_equal(gw_did_you_mean("tsl", keys), "tls");
	assert_string_equal(gw_did_you_mean("master_pasword", keys), "master_password");
	/* 13 characters allow 4 edits, 11 only 3 */
	assert_string_equal(gw_did_you_mean("mastr_passwrd", keys), "master_password");
	assert_null(gw_did_you_mean("mastr_pswrd", keys));
	assert_null(gw_did_you_mean("completely_unrelated", keys));
	assert_null(gw_did_you_mean("xyz", keys)); /* three edits from tls: nothing kept */
	assert_null(gw_did_you_mean("a", keys));
	static const char *const none[] = {NULL};
	assert_null(gw_did_you_mean("host", none));
	/* the first of equally close candidates wins */
	static const char *const tie[] = {"cat", "bat", NULL};
	assert_string_equal(gw_did_you_mean("hat", tie), "cat");
}

static void test_buf(void **state)
{
	(void)state;
	struct gw_buf b = {0};
	gw_buf_puts(&b, "abc");
	gw_buf_append(&b, "de\0f", 4);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "abcde\0f", 8);
	gw_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	for (int i = 0; i < 1000; i++)
		gw_buf_printf(&b, "%d,", i % 10);
	assert_int_equal(b.len, 2000);
	assert_int_equal(strlen(b.data), 2000);
	assert_memory_equal(b.data + 1990, "5,6,7,8,9,", 10);
	gw_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
}

static void test_alloc(void **state)
{
	(void)state;
	char *s = gw_xasprintf("%s-%d", "pipe", 42);
	assert_string_equal(s, "pipe-42");
	free(s);
	s = gw_xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = gw_xstrndup("ab", 10);
	assert_string_equal(s, "ab");
	free(s);
	int *z = gw_xcalloc(4, sizeof(int));
	assert_int_equal(z[0] | z[1] | z[2] | z[3], 0);
	z = gw_xrealloc(z, 100 * sizeof(int));
	free(z);
	free(gw_xmalloc(0)); /* never NULL, even for zero bytes */
}

static void test_diag_format(void **state)
{
	(void)state;
	struct gw_diag d = {0};
	gw_diag_error(&d, "p.yaml", 3, 5, "bad %s", "thing");
	gw_diag_error(&d, "p.yaml", 3, 0, "no column");
	gw_diag_error(&d, "p.yaml", 0, 0, "no line");
	gw_diag_error(&d, NULL, 0, 0, "nothing");
	gw_diag_warn(&d, "users.csv", 7, 1, "careful");
	gw_diag_error(&d, "p.yaml", 0, 4, "column without line");
	assert_int_equal(d.count, 6);
	assert_int_equal(d.errors, 5);
	static const char *const expected[] = {
	        "p.yaml:3:5: error: bad thing",    "p.yaml:3: error: no column",
	        "p.yaml: error: no line",          "error: nothing",
	        "users.csv:7:1: warning: careful", "p.yaml: error: column without line",
	};
	for (size_t i = 0; i < d.count; i++) {
		char *text = gw_diag_format(&d.entries[i]);
		assert_string_equal(text, expected[i]);
		free(text);
	}
	gw_diag_free(&d);
	assert_int_equal(d.count, 0);
	assert_int_equal(d.errors, 0);
	assert_null(d.entries);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_size_units),    cmocka_unit_test(test_size_decimals),
	        cmocka_unit_test(test_size_rejects),  cmocka_unit_test(test_size_overflow),
	        cmocka_unit_test(test_duration),      cmocka_unit_test(test_bool),
	        cmocka_unit_test(test_int),           cmocka_unit_test(test_date),
	        cmocka_unit_test(test_edit_distance), cmocka_unit_test(test_did_you_mean),
	        cmocka_unit_test(test_buf),           cmocka_unit_test(test_alloc),
	        cmocka_unit_test(test_diag_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
