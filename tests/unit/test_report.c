/* Reports: JSON string escaping, CSV quoting, per-mailbox JSON and CSV,
 * totals, and the report files of a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "report.h"

static char *json_of(const char *s, size_t len)
{
	struct gw_buf b = {0};
	gw_json_string(&b, s, len);
	return b.data;
}

static void assert_json(const char *input, size_t len, const char *expected)
{
	char *out = json_of(input, len);
	assert_string_equal(out, expected);
	free(out);
}

static void test_json_escaping(void **state)
{
	(void)state;
	assert_json("", 0, "\"\"");
	assert_json("plain", 5, "\"plain\"");
	assert_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	assert_json("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
	assert_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
	assert_json("nul\0byte", 8, "\"nul\\u0000byte\"");
	assert_json("/", 1, "\"/\"");
	/* Valid UTF-8 passes through unchanged: 2, 3 and 4 byte sequences. */
	assert_json("Grüße – 📬", strlen("Grüße – 📬"), "\"Grüße – 📬\"");
	/* Invalid UTF-8: each offending byte becomes U+FFFD. */
	assert_json("a\xff"
	            "b",
	            3, "\"a\\ufffdb\"");
	assert_json("\xc3", 1, "\"\\ufffd\"");                       /* truncated */
	assert_json("\xc3(", 2, "\"\\ufffd(\"");                     /* bad continuation */
	assert_json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");            /* overlong '/' */
	assert_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	assert_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	assert_json("\x80z", 2, "\"\\ufffdz\""); /* lone continuation */
	assert_json("\xe2\x82\xac\xe2\x82", 5, "\"€\\ufffd\\ufffd\"");
}

static char *csv_of(const char *s)
{
	struct gw_buf b = {0};
	gw_buf_puts(&b, "");
	gw_csv_field(&b, s);
	return b.data;
}

static void test_csv_quoting(void **state)
{
	(void)state;
	char *out;
	out = csv_of("plain value");
	assert_string_equal(out, "plain value");
	free(out);
	out = csv_of("a,b");
	assert_string_equal(out, "\"a,b\"");
	free(out);
	out = csv_of("say \"hi\"");
	assert_string_equal(out, "\"say \"\"hi\"\"\"");
	free(out);
	out = csv_of("two\nlines\r");
	assert_string_equal(out, "\"two\nlines\r\"");
	free(out);
	out = csv_of("Entwürfe");
	assert_string_equal(out, "Entwürfe");
	free(out);
	out = csv_of("");
	assert_string_equal(out, "");
	free(out);
}

/* A mailbox with one of everything. */
static void sample_mailbox(struct gw_mailbox_report *m)
{
	memset(m, 0, sizeof(*m));
	m->pipeline = "p1";
	m->email = "ann@example.org";
	m->status = GW_MAILBOX_PARTIAL;
	m->started = 1700000000000;
	m->finished = 1700000002500;
	m->attempts = 2;
	m->connections = 2;
	m->max_size = 100000;
	struct gw_folder_report *inbox = gw_mailbox_report_folder(m, "INBOX");
	inbox->sink_folder = strdup("INBOX");
	inbox->found = 10;
	inbox->migrated = 5;
	inbox->already_present = 1;
	inbox->bytes = 12345;
	gw_folder_report_skip(inbox, 7, GW_SKIP_TOO_LARGE, 200000);
	gw_folder_report_skip(inbox, 3, GW_SKIP_OVER_CAP, 0);
	gw_folder_report_skip(inbox, 2, GW_SKIP_FILTERED, 946684800);
	gw_folder_report_fail(inbox, 9, "sink maildir: disk \"full\"");
	gw_folder_report_fail(inbox, 10, NULL);
	struct gw_folder_report *bad = gw_mailbox_report_folder(m, "A,B");
	bad->error = strdup("cannot migrate folder");
	assert_ptr_equal(gw_mailbox_report_folder(m, "INBOX"), &m->folders[0]);
	gw_mailbox_report_collision(m, ".Sent", "Sent", "Sent Messages");
	gw_mailbox_report_collision(m, ".Sent", "Sent", "Sent Messages"); /* deduplicated */
	gw_mailbox_report_warn(m, "%d message(s) may be duplicated", 3);
	gw_mailbox_report_warn(m, "%d message(s) may be duplicated", 3); /* deduplicated */
	gw_mailbox_report_set_error(m, "source imap: connection lost");
}

static const char sample_json[] =
        "{\"pipeline\":\"p1\",\"mailbox\":\"ann@example.org\",\"status\":\"partial\","
        "\"error\":\"source imap: connection lost\",\"started\":\"2023-11-14T22:13:20.000Z\","
        "\"finished\":\"2023-11-14T22:13:22.500Z\",\"duration_ms\":2500,\"attempts\":2,"
        "\"connections\":2,"
        "\"found\":10,\"migrated\":5,\"already_present\":1,\"skipped_too_large\":1,"
        "\"skipped_over_cap\":1,\"skipped_filtered\":1,\"failed\":2,\"bytes\":12345,"
        "\"folders\":[{\"source\":\"INBOX\",\"sink_folder\":\"INBOX\",\"error\":null,"
        "\"found\":10,\"migrated\":5,\"already_present\":1,\"rematched\":0,"
        "\"skipped_too_large\":1,\"skipped_over_cap\":1,\"skipped_filtered\":1,\"failed\":2,"
        "\"bytes\":12345,\"skipped\":[{\"uid\":7,\"reason\":\"too large\",\"size\":200000,"
        "\"limit\":100000},{\"uid\":3,\"reason\":\"over cap\"},{\"uid\":2,\"reason\":"
        "\"filtered: older than since\",\"internal_date\":\"2000-01-01T00:00:00.000Z\"}],"
        "\"failures\":[{\"uid\":9,\"reason\":\"sink maildir: disk \\\"full\\\"\"},"
        "{\"uid\":10,\"reason\":\"failed\"}]},"
        "{\"source\":\"A,B\",\"sink_folder\":null,\"error\":\"cannot migrate folder\","
        "\"found\":0,\"migrated\":0,\"already_present\":0,\"rematched\":0,"
        "\"skipped_too_large\":0,\"skipped_over_cap\":0,\"skipped_filtered\":0,\"failed\":0,"
        "\"bytes\":0,\"skipped\":[],\"failures\":[]}],"
        "\"collisions\":[{\"sink_folder\":\".Sent\",\"folders\":[\"Sent\",\"Sent Messages\"]}],"
        "\"warnings\":[\"3 message(s) may be duplicated\"]}";

static const char sample_csv[] =
        "p1,ann@example.org,partial,INBOX,INBOX,10,5,1,1,1,1,2,12345,"
        "source imap: connection lost\r\n"
        "p1,ann@example.org,partial,\"A,B\",,0,0,0,0,0,0,0,0,cannot migrate folder\r\n";

static void test_mailbox_json(void **state)
{
	(void)state;
	struct gw_mailbox_report m;
	sample_mailbox(&m);
	struct gw_buf b = {0};
	gw_report_mailbox_json(&b, &m);
	assert_string_equal(b.data, sample_json);
	gw_buf_free(&b);
	gw_mailbox_report_free(&m);
}

static void test_mailbox_csv(void **state)
{
	(void)state;
	struct gw_mailbox_report m;
	sample_mailbox(&m);
	struct gw_buf b = {0};
	gw_report_mailbox_csv(&b, &m);
	assert_string_equal(b.data, sample_csv);
	gw_buf_free(&b);
	gw_mailbox_report_free(&m);

	/* A mailbox that failed before listing folders still has a row. */
	struct gw_mailbox_report failed = {
	        .pipeline = "p1", .email = "bob@example.org", .status = GW_MAILBOX_FAILED};
	gw_mailbox_report_set_error(&failed, "source imap: login refused, \"bad\" password");
	gw_report_mailbox_csv(&b, &failed);
	assert_string_equal(b.data, "p1,bob@example.org,failed,,,0,0,0,0,0,0,0,0,"
	                            "\"source imap: login refused, \"\"bad\"\" password\"\r\n");
	gw_buf_free(&b);
	gw_mailbox_report_free(&failed);
}

static void test_counts_and_reset(void **state)
{
	(void)state;
	struct gw_mailbox_report m;
	sample_mailbox(&m);
	struct gw_counts c = {0};
	gw_counts_add_mailbox(&c, &m);
	m.status = GW_MAILBOX_COMPLETED;
	gw_counts_add_mailbox(&c, &m);
	assert_int_equal(c.mailboxes, 2);
	assert_int_equal(c.partial, 1);
	assert_int_equal(c.completed, 1);
	assert_int_equal(c.failed, 0);
	assert_int_equal(c.found, 20);
	assert_int_equal(c.migrated, 10);
	assert_int_equal(c.already_present, 2);
	assert_int_equal(c.skipped_too_large, 2);
	assert_int_equal(c.skipped_over_cap, 2);
	assert_int_equal(c.skipped_filtered, 2);
	assert_int_equal(c.failed_messages, 4);
	assert_int_equal(c.bytes, 24690);

	/* A new attempt recomputes what scanning finds; copies and failures stay. */
	gw_folder_report_reset_scan(&m.folders[0]);
	assert_int_equal(m.folders[0].found, 0);
	assert_int_equal(m.folders[0].skip_count, 0);
	assert_int_equal(m.folders[0].skipped_over_cap, 0);
	assert_int_equal(m.folders[0].migrated, 5);
	assert_int_equal(m.folders[0].failed, 2);
	assert_int_equal(m.folders[0].failure_count, 2);
	gw_mailbox_report_free(&m);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *data = malloc((size_t)n + 1);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	data[n] = '\0';
	fclose(f);
	return data;
}

static void test_run_report_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/gw-report-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *sub = gw_xasprintf("%s/reports/nested", dir);
	char *error = NULL;
	int64_t start = 1700000000000;
	struct gw_run_report *r = gw_run_report_open(sub, start, false, &error);
	assert_non_null(r);
	/* A second run in the same second gets its own files. */
	struct gw_run_report *r2 = gw_run_report_open(sub, start, true, &error);
	assert_non_null(r2);
	char *expected_json = gw_xasprintf("%s/report-20231114T221320Z.json", sub);
	char *expected_json2 = gw_xasprintf("%s/report-20231114T221320Z-2.json", sub);
	assert_string_equal(gw_run_report_json_path(r), expected_json);
	assert_string_equal(gw_run_report_json_path(r2), expected_json2);
	assert_int_equal(access(expected_json, F_OK), -1); /* only .tmp until closed */

	struct gw_mailbox_report m;
	sample_mailbox(&m);
	gw_run_report_add(r, &m);
	gw_run_report_add(r, &m);
	const char *pipelines[] = {"p1", "p2"};
	struct gw_budget_report budgets[] = {
	        {.key = "source imap 127.0.0.1", .limit = 2, .peak = 2}};
	assert_true(gw_run_report_close(r, start + 61000, pipelines, 2, budgets, 1, &error));
	assert_null(error);
	assert_true(gw_run_report_close(r2, start + 1000, pipelines, 0, NULL, 0, &error));

	char *json = read_all(expected_json);
	/* The version is the build's: read it back, then compare everything exactly. */
	char version[64] = "";
	const char *v = strstr(json, "\"godwit_version\":\"");
	assert_non_null(v);
	assert_int_equal(sscanf(v + 18, "%63[^\"]", version), 1);
	assert_string_not_equal(version, "unknown");
	const char *counts =
	        "\"found\":20,\"migrated\":10,\"already_present\":2,"
	        "\"skipped_too_large\":2,\"skipped_over_cap\":2,\"skipped_filtered\":2,"
	        "\"failed\":4,\"bytes\":24690";
	const char *zero = "\"found\":0,\"migrated\":0,\"already_present\":0,"
	                   "\"skipped_too_large\":0,\"skipped_over_cap\":0,\"skipped_filtered\":0,"
	                   "\"failed\":0,\"bytes\":0";
	char *expected = gw_xasprintf(
	        "{\"report_version\":1,\"godwit_version\":\"%s\",\"dry_run\":false,"
	        "\"started\":\"2023-11-14T22:13:20.000Z\",\n\"mailboxes\":[\n%s,\n%s\n],\n"
	        "\"pipelines\":[{\"name\":\"p1\",\"totals\":{\"mailboxes\":2,\"completed\":0,"
	        "\"partial\":2,\"failed_mailboxes\":0,\"interrupted\":0,%s}},{\"name\":\"p2\","
	        "\"totals\":{\"mailboxes\":0,\"completed\":0,\"partial\":0,\"failed_mailboxes\":0,"
	        "\"interrupted\":0,%s}}],\n"
	        "\"connections\":[{\"budget\":\"source imap 127.0.0.1\",\"limit\":2,\"peak\":2}],\n"
	        "\"totals\":{\"mailboxes\":2,\"completed\":0,\"partial\":2,\"failed_mailboxes\":0,"
	        "\"interrupted\":0,%s},\n\"finished\":\"2023-11-14T22:14:21.000Z\","
	        "\"duration_ms\":61000}\n",
	        version, sample_json, sample_json, counts, zero, counts);
	assert_string_equal(json, expected);
	free(expected);
	free(json);

	char *csv_path = gw_xasprintf("%s/report-20231114T221320Z.csv", sub);
	assert_string_equal(gw_run_report_csv_path(r), csv_path);
	char *csv = read_all(csv_path);
	char *expected_csv = gw_xasprintf(
	        "pipeline,mailbox,status,folder,sink_folder,found,migrated,already_present,"
	        "skipped_too_large,skipped_over_cap,skipped_filtered,failed,bytes,error\r\n%s%s",
	        sample_csv, sample_csv);
	assert_string_equal(csv, expected_csv);
	free(expected_csv);
	free(csv);

	char *json2 = read_all(expected_json2);
	assert_non_null(
	        strstr(json2, ",\"dry_run\":true,\"started\":\"2023-11-14T22:13:20.000Z\","));
	assert_non_null(strstr(json2, "\"mailboxes\":[\n\n],\n\"pipelines\":[],\n"));
	free(json2);

	const struct gw_counts *t = gw_run_report_totals(r);
	assert_int_equal(t->mailboxes, 2);
	assert_int_equal(t->migrated, 10);

	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	gw_mailbox_report_free(&m);
	gw_run_report_free(r);
	gw_run_report_free(r2);
	free(csv_path);
	free(expected_json);
	free(expected_json2);
	free(sub);
}

static void test_report_dir_not_writable(void **state)
{
	(void)state;
	char *error = NULL;
	struct gw_run_report *r = gw_run_report_open("/proc/gw-no-such/reports", 0, false, &error);
	assert_null(r);
	assert_string_equal(error, "cannot create report directory /proc/gw-no-such: "
	                           "No such file or directory");
	free(error);
}

static void test_summary(void **state)
{
	(void)state;
	struct gw_counts t = {.mailboxes = 3,
	                      .completed = 2,
	                      .failed = 1,
	                      .migrated = 500,
	                      .already_present = 20,
	                      .skipped_too_large = 1,
	                      .skipped_over_cap = 4,
	                      .bytes = 25000000};
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	gw_report_print_summary(out, &t, 10000, "/r/report.json", "/r/report.csv");
	fclose(out);
	assert_string_equal(text, "\nrun finished in 10.0 s\n"
	                          "  mailboxes: 2 completed, 0 partial, 1 failed, 0 interrupted "
	                          "(of 3)\n"
	                          "  messages:  500 migrated, 20 already present, 0 failed\n"
	                          "  skipped:   5 (1 too large, 4 over cap, 0 filtered)\n"
	                          "  data:      25.0 MB, 50.0 msgs/s, 2.50 MB/s\n"
	                          "  report:    /r/report.json\n"
	                          "             /r/report.csv\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_json_escaping),
	        cmocka_unit_test(test_csv_quoting),
	        cmocka_unit_test(test_mailbox_json),
	        cmocka_unit_test(test_mailbox_csv),
	        cmocka_unit_test(test_counts_and_reset),
	        cmocka_unit_test(test_run_report_files),
	        cmocka_unit_test(test_report_dir_not_writable),
	        cmocka_unit_test(test_summary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
