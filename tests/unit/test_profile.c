/* profile.c: bad profiles are each reported with the exact
 * "file:line:col: error: message" lines; good profiles load with the right
 * values, defaults and resolved paths. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "optbind.h"
#include "profile.h"
#include "util.h"

#define PROFILES GW_TEST_DATA_DIR "/profiles"

/* Lines 1-6 of most bad profiles: a valid pipeline to add one mistake to. */
#define BASE                                                                                       \
	"version: 1\n"                                                                             \
	"pipelines:\n"                                                                             \
	"  - name: p1\n"                                                                           \
	"    source: {plugin: imap}\n"                                                             \
	"    sink: {plugin: maildir}\n"                                                            \
	"    mailboxes: {csv: users.csv}\n"

#define VALID_KEYS    "valid keys: version, plugin_path, state, report, pipelines"
#define PIPELINE_KEYS "valid keys: name, source, sink, mailboxes, folders, messages, limits"
#define SIZE_EXPECTED "expected a size such as 35MB, 512KiB or 100 (bytes)"
#define DATE_EXPECTED "expected a date such as 2015-01-01 or 2015-01-01T00:00:00Z"

struct bad_case {
	const char *name;
	const char *yaml;
	/* One diagnostic per line, without the file name: "3:5: error: ..." or
	 * "error: ..." when there is no position. */
	const char *expected;
};

static const struct bad_case bad_cases[] = {
        {"yaml_indentation", "version: 1\n  pipelines: []\n",
         "2:12: error: YAML syntax error: mapping values are not allowed in this context\n"},
        {"yaml_unclosed_flow_sequence", "version: 1\npipelines: [a, b\n",
         "3:1: error: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
         "sequence at line 2, column 12)\n"},
        {"yaml_tab_indentation", "version: 1\npipelines:\n\t- name: x\n",
         "3:1: error: YAML syntax error: found character that cannot start any token (while "
         "scanning for the next token at line 3, column 1)\n"},
        {"yaml_unclosed_quote", "version: \"1\n",
         "2:1: error: YAML syntax error: found unexpected end of stream (while scanning a quoted "
         "scalar at line 1, column 10)\n"},
        {"yaml_sequence_in_mapping", "version: 1\n- pipelines\n",
         "2:1: error: YAML syntax error: did not find expected key (while parsing a block "
         "mapping at line 1, column 1)\n"},
        {"yaml_undefined_alias", BASE "state: *nowhere\n",
         "7:8: error: YAML syntax error: found undefined alias\n"},
        {"yaml_invalid_utf8", "version: 1\nstate: \xff\n",
         "error: cannot read YAML: invalid leading UTF-8 octet at byte offset 18\n"},
        {"two_documents", BASE "---\nversion: 1\n",
         "7:1: error: a profile is one YAML document; found a second one here\n"},
        {"syntax_error_in_second_document", BASE "---\nversion: [1\n",
         "9:1: error: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
         "sequence at line 8, column 10)\n"},
        {"empty_file", "", "error: the profile is empty (expected 'version: 1' and 'pipelines')\n"},
        {"only_comments", "# nothing here\n\n",
         "error: the profile is empty (expected 'version: 1' and 'pipelines')\n"},
        {"root_is_sequence", "- version: 1\n",
         "1:1: error: expected a mapping with 'version' and 'pipelines' at the top, got a "
         "sequence\n"},
        {"root_is_scalar", "hello\n",
         "1:1: error: expected a mapping with 'version' and 'pipelines' at the top, got a "
         "scalar\n"},
        {"missing_version",
         "pipelines:\n  - name: p1\n    source: {plugin: imap}\n    sink: {plugin: maildir}\n"
         "    mailboxes: {csv: users.csv}\n",
         "1:1: error: missing required key 'version'\n"},
        {"version_2", "version: 2\npipelines: []\n",
         "1:10: error: version: unsupported profile version 2 (this godwit reads version 1)\n"
         "2:12: error: pipelines: expected at least one pipeline\n"},
        {"version_not_a_number", "version: one\npipelines: []\n",
         "1:10: error: version: expected an integer, got 'one'\n"
         "2:12: error: pipelines: expected at least one pipeline\n"},
        {"version_sequence", "version: [1]\npipelines: []\n",
         "1:10: error: version: expected an integer, got a sequence\n"
         "2:12: error: pipelines: expected at least one pipeline\n"},
        {"unknown_top_key_typo", "verison: 1\npipelines: []\n",
         "1:1: error: unknown key 'verison' (did you mean 'version'?); " VALID_KEYS "\n"
         "1:1: error: missing required key 'version'\n"
         "2:12: error: pipelines: expected at least one pipeline\n"},
        {"unknown_top_key_far", BASE "colour: blue\n",
         "7:1: error: unknown key 'colour'; " VALID_KEYS "\n"},
        {"duplicate_top_key", BASE "version: 1\n",
         "7:1: error: version: duplicate key (first set at line 1)\n"},
        {"missing_pipelines", "version: 1\n", "1:1: error: missing required key 'pipelines'\n"},
        {"pipelines_null", "version: 1\npipelines:\n",
         "2:11: error: pipelines: missing value (expected a list of pipelines)\n"},
        {"pipelines_mapping", "version: 1\npipelines: {name: p1}\n",
         "2:12: error: pipelines: expected a list of pipelines, got a mapping\n"},
        {"pipeline_scalar", "version: 1\npipelines:\n  - p1\n",
         "3:5: error: pipelines[0]: expected a mapping, got a scalar\n"},
        {"pipeline_missing_keys", "version: 1\npipelines:\n  - folders: {exclude: [Junk]}\n",
         "3:5: error: pipelines[0]: missing required key 'name'\n"
         "3:5: error: pipelines[0]: missing required key 'source'\n"
         "3:5: error: pipelines[0]: missing required key 'sink'\n"
         "3:5: error: pipelines[0]: missing required key 'mailboxes'\n"},
        {"pipeline_unknown_key", BASE "    sinks: {plugin: maildir}\n",
         "7:5: error: pipelines[0]: unknown key 'sinks' (did you mean 'sink'?); " PIPELINE_KEYS
         "\n"},
        {"pipeline_name_spaces",
         "version: 1\npipelines:\n  - name: my pipeline\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes: {csv: users.csv}\n",
         "3:11: error: pipelines[0].name: expected a pipeline name (letters, digits, '.', '_' and "
         "'-'), got 'my pipeline'\n"},
        {"pipeline_name_empty",
         "version: 1\npipelines:\n  - name: ''\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes: {csv: users.csv}\n",
         "3:11: error: pipelines[0].name: missing value (expected a pipeline name)\n"},
        {"duplicate_pipeline_name",
         BASE "  - name: p1\n    source: {plugin: imap}\n    sink: {plugin: maildir}\n"
              "    mailboxes: {csv: other.csv}\n",
         "7:11: error: pipelines[1].name: duplicate pipeline name 'p1' (first used at line 3)\n"},
        {"source_scalar",
         "version: 1\npipelines:\n  - name: p1\n    source: imap\n"
         "    sink: {plugin: maildir}\n    mailboxes: {csv: users.csv}\n",
         "4:13: error: pipelines[0].source: expected a mapping, got a scalar\n"},
        {"source_without_plugin",
         "version: 1\npipelines:\n  - name: p1\n    source:\n      host: imap.example.org\n"
         "    sink: {plugin: maildir}\n    mailboxes: {csv: users.csv}\n",
         "5:7: error: pipelines[0].source: missing required key 'plugin'\n"},
        {"sink_plugin_path_like",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: ../evil}\n    mailboxes: {csv: users.csv}\n",
         "5:20: error: pipelines[0].sink.plugin: expected a plugin name (letters, digits, '_' and "
         "'-'), got '../evil'\n"},
        {"sink_plugin_mapping",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: {name: maildir}}\n    mailboxes: {csv: users.csv}\n",
         "5:20: error: pipelines[0].sink.plugin: expected a plugin name, got a mapping\n"},
        {"sink_plugin_twice",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink:\n      plugin: maildir\n      plugin: imap\n    mailboxes: {csv: u.csv}\n",
         "7:7: error: pipelines[0].sink.plugin: duplicate key (first set at line 6)\n"},
        {"mailboxes_empty",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes: {}\n",
         "6:16: error: pipelines[0].mailboxes: expected 'csv' (a file) or 'list' (inline "
         "mailboxes)\n"},
        {"mailboxes_unknown_key",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes: {cvs: users.csv}\n",
         "6:17: error: pipelines[0].mailboxes: unknown key 'cvs' (did you mean 'csv'?); valid "
         "keys: csv, list\n"
         "6:16: error: pipelines[0].mailboxes: expected 'csv' (a file) or 'list' (inline "
         "mailboxes)\n"},
        {"mailboxes_csv_list",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes: {csv: [a.csv]}\n",
         "6:22: error: pipelines[0].mailboxes.csv: expected a path, got a sequence\n"},
        {"mailbox_list_not_sequence",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes:\n      list: {email: a@example.org}\n",
         "7:13: error: pipelines[0].mailboxes.list: expected a list of mailboxes, got a "
         "mapping\n"},
        {"mailbox_bad_email",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes:\n      list:\n        - email: alice\n",
         "8:18: error: pipelines[0].mailboxes.list[0].email: expected an email address, got "
         "'alice'\n"},
        {"mailbox_missing_email",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes:\n      list:\n        - {username: a}\n",
         "8:11: error: pipelines[0].mailboxes.list[0]: missing required key 'email'\n"},
        {"mailbox_unknown_key",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes:\n      list:\n"
         "        - {email: a@example.org, pasword: x}\n",
         "8:34: error: pipelines[0].mailboxes.list[0]: unknown key 'pasword' (did you mean "
         "'password'?); valid keys: email, username, password\n"},
        {"mailbox_duplicate",
         "version: 1\npipelines:\n  - name: p1\n    source: {plugin: imap}\n"
         "    sink: {plugin: maildir}\n    mailboxes:\n      list:\n"
         "        - email: alice@example.org\n        - email: Alice@Example.org\n",
         "9:18: error: pipelines[0].mailboxes.list[1].email: duplicate mailbox "
         "'Alice@Example.org' (first listed at line 8)\n"},
        {"folders_unknown_key", BASE "    folders: {exlude: [Junk]}\n",
         "7:15: error: pipelines[0].folders: unknown key 'exlude' (did you mean 'exclude'?); "
         "valid keys: include, exclude, map\n"},
        {"folders_exclude_mapping", BASE "    folders: {exclude: {Junk: 1}}\n",
         "7:24: error: pipelines[0].folders.exclude: expected a string or a list of strings, got "
         "a mapping\n"},
        {"folders_include_nested", BASE "    folders:\n      include: [INBOX, [Sent]]\n",
         "8:24: error: pipelines[0].folders.include[1]: expected a string, got a sequence\n"},
        {"folder_map_sequence", BASE "    folders: {map: [a, b]}\n",
         "7:20: error: pipelines[0].folders.map: expected a mapping, got a sequence\n"},
        {"folder_map_two_stars", BASE "    folders:\n      map: {\"a*b*\": \"c/*\"}\n",
         "8:13: error: pipelines[0].folders.map.\"a*b*\": pattern 'a*b*' has more than one '*'\n"},
        {"folder_map_star_without_source",
         BASE "    folders:\n      map: {\"Old\": \"Archive/*\"}\n",
         "8:20: error: pipelines[0].folders.map.\"Old\": replacement 'Archive/*' uses '*' but its "
         "pattern 'Old' has none to take it from\n"},
        {"folder_map_value_list", BASE "    folders:\n      map:\n        Old: [Archive]\n",
         "9:14: error: pipelines[0].folders.map.\"Old\": expected a folder name, got a "
         "sequence\n"},
        {"messages_scalar", BASE "    messages: 500\n",
         "7:15: error: pipelines[0].messages: expected a mapping, got a scalar\n"},
        {"messages_unknown_key", BASE "    messages:\n      max_sise: 10MB\n",
         "8:7: error: pipelines[0].messages: unknown key 'max_sise' (did you mean 'max_size'?); "
         "valid keys: max_count, max_size, since\n"},
        {"max_size_bad_unit", BASE "    messages:\n      max_size: 35XB\n",
         "8:17: error: pipelines[0].messages.max_size: " SIZE_EXPECTED ", got '35XB'\n"},
        {"max_size_negative", BASE "    messages:\n      max_size: -1MB\n",
         "8:17: error: pipelines[0].messages.max_size: " SIZE_EXPECTED ", got '-1MB'\n"},
        {"max_size_overflow", BASE "    messages:\n      max_size: 99999999999GB\n",
         "8:17: error: pipelines[0].messages.max_size: " SIZE_EXPECTED ", got '99999999999GB'\n"},
        {"max_size_zero", BASE "    messages:\n      max_size: 0\n",
         "8:17: error: pipelines[0].messages.max_size: expected a size greater than 0, got '0'\n"},
        {"max_size_null", BASE "    messages:\n      max_size:\n",
         "8:16: error: pipelines[0].messages.max_size: missing value (expected a size)\n"},
        {"max_count_zero", BASE "    messages: {max_count: 0}\n",
         "7:27: error: pipelines[0].messages.max_count: expected an integer of at least 1, got "
         "'0'\n"},
        {"max_count_text", BASE "    messages: {max_count: all}\n",
         "7:27: error: pipelines[0].messages.max_count: expected an integer of at least 1, got "
         "'all'\n"},
        {"since_invalid_day", BASE "    messages: {since: 2015-02-30}\n",
         "7:23: error: pipelines[0].messages.since: " DATE_EXPECTED ", got '2015-02-30'\n"},
        {"since_no_offset", BASE "    messages: {since: \"2015-01-01T10:00:00\"}\n",
         "7:23: error: pipelines[0].messages.since: " DATE_EXPECTED
         ", got '2015-01-01T10:00:00'\n"},
        {"limits_parallel_zero", BASE "    limits:\n      mailboxes_in_parallel: 0\n",
         "8:30: error: pipelines[0].limits.mailboxes_in_parallel: expected an integer from 1 to "
         "256, got '0'\n"},
        {"limits_parallel_too_many", BASE "    limits: {mailboxes_in_parallel: 257}\n",
         "7:37: error: pipelines[0].limits.mailboxes_in_parallel: expected an integer from 1 to "
         "256, got '257'\n"},
        {"limits_connections_text", BASE "    limits: {source_connections: many}\n",
         "7:34: error: pipelines[0].limits.source_connections: expected an integer from 1 to "
         "1024, got 'many'\n"},
        {"limits_retries_negative", BASE "    limits: {retries: -1}\n",
         "7:23: error: pipelines[0].limits.retries: expected an integer from 0 to 100, got "
         "'-1'\n"},
        {"limits_unknown_key", BASE "    limits: {mailboxes_parallel: 2}\n",
         "7:14: error: pipelines[0].limits: unknown key 'mailboxes_parallel' (did you mean "
         "'mailboxes_in_parallel'?); valid keys: mailboxes_in_parallel, source_connections, "
         "sink_connections, connections_per_mailbox, retries, batch_messages, batch_bytes\n"},
        {"limits_batch_messages_zero", BASE "    limits: {batch_messages: 0}\n",
         "7:30: error: pipelines[0].limits.batch_messages: expected an integer from 1 to 65536, "
         "got '0'\n"},
        {"limits_batch_messages_too_many", BASE "    limits: {batch_messages: 65537}\n",
         "7:30: error: pipelines[0].limits.batch_messages: expected an integer from 1 to 65536, "
         "got '65537'\n"},
        {"limits_batch_bytes_zero", BASE "    limits: {batch_bytes: 0}\n",
         "7:27: error: pipelines[0].limits.batch_bytes: expected a size greater than 0, got "
         "'0'\n"},
        {"limits_batch_bytes_text", BASE "    limits: {batch_bytes: big}\n",
         "7:27: error: pipelines[0].limits.batch_bytes: expected a size such as 35MB, 512KiB or "
         "100 (bytes), got 'big'\n"},
        {"state_sequence", BASE "state: [a.db]\n",
         "7:8: error: state: expected a path, got a sequence\n"},
        {"report_null", BASE "report:\n", "7:8: error: report: missing value (expected a path)\n"},
        {"plugin_path_mapping", BASE "plugin_path: {dir: x}\n",
         "7:14: error: plugin_path: expected a string or a list of strings, got a mapping\n"},
        {"plugin_path_bad_item", BASE "plugin_path: [./a, {b: c}]\n",
         "7:20: error: plugin_path[1]: expected a path, got a mapping\n"},
        {"errors_in_two_pipelines",
         BASE "    messages: {max_size: big}\n"
              "  - name: p2\n    source: {plugin: imap}\n    sink: {plugin: maildir}\n"
              "    mailboxes: {csv: u.csv}\n    limits: {retries: lots}\n",
         "7:26: error: pipelines[0].messages.max_size: " SIZE_EXPECTED ", got 'big'\n"
         "12:23: error: pipelines[1].limits.retries: expected an integer from 0 to 100, got "
         "'lots'\n"},
};

static char temp_dir[] = "/tmp/gw-test-profile-XXXXXX";

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(temp_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	char *cmd = gw_xasprintf("rm -rf '%s'", temp_dir);
	int rc = system(cmd);
	free(cmd);
	return rc == 0 ? 0 : -1;
}

static char *write_profile(const char *name, const char *yaml)
{
	char *path = gw_xasprintf("%s/%s.yaml", temp_dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	return path;
}

static char *diag_text(const struct gw_diag *d)
{
	struct gw_buf buf = {0};
	gw_buf_puts(&buf, "");
	for (size_t i = 0; i < d->count; i++) {
		char *line = gw_diag_format(&d->entries[i]);
		gw_buf_printf(&buf, "%s\n", line);
		free(line);
	}
	return buf.data;
}

/* Each expected line with the profile path put in front ("path:" or "path: "). */
static char *with_file(const char *path, const char *expected)
{
	struct gw_buf buf = {0};
	gw_buf_puts(&buf, "");
	for (const char *line = expected; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line + 1) : strlen(line);
		gw_buf_printf(&buf, "%s:%s", path, strncmp(line, "error:", 6) == 0 ? " " : "");
		gw_buf_append(&buf, line, len);
		line += len;
	}
	return buf.data;
}

static void run_bad_case(void **state)
{
	const struct bad_case *c = *state;
	char *path = write_profile(c->name, c->yaml);
	struct gw_diag diag = {0};
	struct gw_profile *p = gw_profile_load(path, &diag);
	char *actual = diag_text(&diag);
	char *expected = with_file(path, c->expected);
	assert_string_equal(actual, expected);
	assert_null(p);
	assert_true(diag.errors > 0);
	free(expected);
	free(actual);
	gw_diag_free(&diag);
	free(path);
}

static void test_missing_file(void **state)
{
	(void)state;
	struct gw_diag diag = {0};
	assert_null(gw_profile_load("/nonexistent/godwit.yaml", &diag));
	char *text = diag_text(&diag);
	assert_string_equal(text,
	                    "/nonexistent/godwit.yaml: error: cannot open profile: No such file or "
	                    "directory\n");
	free(text);
	gw_diag_free(&diag);
}

static struct gw_profile *load_ok(const char *path)
{
	struct gw_diag diag = {0};
	struct gw_profile *p = gw_profile_load(path, &diag);
	if (!p) {
		char *text = diag_text(&diag);
		fail_msg("%s did not load:\n%s", path, text);
	}
	assert_int_equal(diag.count, 0);
	gw_diag_free(&diag);
	return p;
}

static char *real_dir(const char *dir)
{
	char *r = realpath(dir, NULL);
	assert_non_null(r);
	return r;
}

static void test_full_profile(void **state)
{
	(void)state;
	struct gw_profile *p = load_ok(PROFILES "/full.yaml");
	char *dir = real_dir(PROFILES);
	char *expect;
	assert_int_equal(p->version, 1);
	assert_string_equal(p->path, PROFILES "/full.yaml");
	assert_string_equal(p->dir, dir);
	assert_int_equal(p->plugin_path_count, 2);
	expect = gw_xasprintf("%s/plugins", dir);
	assert_string_equal(p->plugin_path[0], expect);
	free(expect);
	assert_string_equal(p->plugin_path[1], "/opt/godwit/plugins");
	expect = gw_xasprintf("%s/state/godwit.db", dir);
	assert_string_equal(p->state_path, expect);
	free(expect);
	expect = gw_xasprintf("%s/reports", dir);
	assert_string_equal(p->report_dir, expect);
	free(expect);
	assert_true(p->doc_loaded);
	assert_int_equal(p->pipeline_count, 2);

	const struct gw_pipeline_cfg *pl = &p->pipelines[0];
	assert_string_equal(pl->name, "dovecot-to-exo");
	assert_int_equal(pl->line, 7);
	assert_string_equal(pl->source.plugin, "dovecot");
	assert_string_equal(pl->source.key_path, "pipelines[0].source");
	assert_int_equal(pl->source.line, 9);
	assert_int_equal(pl->source.column, 7);
	assert_string_equal(pl->sink.plugin, "exchange-online");
	assert_string_equal(pl->sink.key_path, "pipelines[0].sink");
	assert_int_equal(pl->sink.line, 15);
	expect = gw_xasprintf("%s/users.csv", dir);
	assert_string_equal(pl->mailboxes_csv, expect);
	free(expect);
	assert_int_equal(pl->mailbox_count, 2);
	assert_string_equal(pl->mailboxes[0].email, "alice@example.org");
	assert_string_equal(pl->mailboxes[0].username, "alice");
	/* references stay unresolved until the plan is made */
	assert_string_equal(pl->mailboxes[0].password, "${ALICE_PASSWORD}");
	assert_int_equal(pl->mailboxes[0].line, 21);
	assert_int_equal(pl->mailboxes[0].column, 11);
	assert_string_equal(pl->mailboxes[1].email, "bob@example.org");
	assert_null(pl->mailboxes[1].username);
	assert_null(pl->mailboxes[1].password);
	assert_int_equal(pl->folders_include_count, 2);
	assert_string_equal(pl->folders_include[0], "INBOX");
	assert_string_equal(pl->folders_include[1], "Archives/*");
	assert_int_equal(pl->folders_exclude_count, 2);
	assert_string_equal(pl->folders_exclude[0], "Junk");
	assert_string_equal(pl->folders_exclude[1], "Trash");
	assert_int_equal(pl->folder_map_count, 2);
	assert_string_equal(pl->folder_map[0].from, "Archives/*");
	assert_string_equal(pl->folder_map[0].to, "Archive/*");
	assert_string_equal(pl->folder_map[1].from, "Old Mail");
	assert_string_equal(pl->folder_map[1].to, "Archive/Old");
	assert_int_equal(pl->max_count, 1000);
	assert_int_equal(pl->max_size, 20000000);
	assert_int_equal(pl->since, 1420070400);
	assert_int_equal(pl->mailboxes_in_parallel, 8);
	assert_int_equal(pl->source_connections, 20);
	assert_int_equal(pl->sink_connections, 16);
	assert_int_equal(pl->connections_per_mailbox, 3);
	assert_int_equal(pl->retries, 3);
	assert_int_equal(pl->batch_messages, 2000);
	assert_int_equal(pl->batch_bytes, 64000000);

	pl = &p->pipelines[1];
	assert_string_equal(pl->name, "second.pipeline_2");
	assert_string_equal(pl->source.plugin, "imap");
	assert_string_equal(pl->sink.plugin, "maildir");
	assert_string_equal(pl->mailboxes_csv, "/abs/users.csv");
	assert_int_equal(pl->mailbox_count, 0);
	assert_int_equal(pl->max_count, 500000);
	assert_int_equal(pl->max_size, 36700160);
	free(dir);
	gw_profile_free(p);
}

static void test_defaults(void **state)
{
	(void)state;
	struct gw_profile *p = load_ok(PROFILES "/minimal.yaml");
	char *dir = real_dir(PROFILES);
	char *expect = gw_xasprintf("%s/godwit-state.db", dir);
	assert_string_equal(p->state_path, expect);
	free(expect);
	expect = gw_xasprintf("%s/reports", dir);
	assert_string_equal(p->report_dir, expect);
	free(expect);
	assert_int_equal(p->plugin_path_count, 0);
	assert_int_equal(p->pipeline_count, 1);
	const struct gw_pipeline_cfg *pl = &p->pipelines[0];
	assert_null(pl->mailboxes_csv);
	assert_int_equal(pl->mailbox_count, 1);
	assert_int_equal(pl->folders_include_count, 0);
	assert_int_equal(pl->folders_exclude_count, 0);
	assert_int_equal(pl->folder_map_count, 0);
	assert_int_equal(pl->max_count, 500000);
	assert_int_equal(pl->max_size, 36700160); /* 35 MiB */
	assert_int_equal(pl->since, 0);
	assert_int_equal(pl->mailboxes_in_parallel, 4);
	assert_int_equal(pl->source_connections, 8);
	assert_int_equal(pl->sink_connections, 8);
	assert_int_equal(pl->connections_per_mailbox, 2);
	assert_int_equal(pl->retries, 5);
	assert_int_equal(pl->batch_messages, 4096);
	assert_int_equal(pl->batch_bytes, 134217728); /* 128 MiB */
	free(dir);
	gw_profile_free(p);
}

/* Paths in a profile are relative to the profile's folder, not to the
 * current directory, however the profile itself was named. */
static void test_relative_paths(void **state)
{
	(void)state;
	char *sub = gw_xasprintf("%s/conf", temp_dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	char *path = gw_xasprintf("%s/p.yaml", sub);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("version: 1\n"
	      "plugin_path: ../plugins/\n"
	      "state: ./db/state.db\n"
	      "report: out\n"
	      "pipelines:\n"
	      "  - name: p\n"
	      "    source: {plugin: imap}\n"
	      "    sink: {plugin: maildir}\n"
	      "    mailboxes: {csv: lists/users.csv}\n",
	      f);
	fclose(f);

	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(temp_dir), 0);
	struct gw_profile *p = load_ok("conf/p.yaml");
	assert_int_equal(chdir(cwd), 0);

	char *dir = real_dir(sub);
	assert_string_equal(p->path, "conf/p.yaml");
	assert_string_equal(p->dir, dir);
	char *expect = gw_xasprintf("%s/../plugins", dir);
	assert_int_equal(p->plugin_path_count, 1);
	assert_string_equal(p->plugin_path[0], expect);
	free(expect);
	expect = gw_xasprintf("%s/db/state.db", dir);
	assert_string_equal(p->state_path, expect);
	free(expect);
	expect = gw_xasprintf("%s/out", dir);
	assert_string_equal(p->report_dir, expect);
	free(expect);
	expect = gw_xasprintf("%s/lists/users.csv", dir);
	assert_string_equal(p->pipelines[0].mailboxes_csv, expect);
	free(expect);
	gw_profile_free(p);
	free(dir);
	free(path);
	free(sub);
}

/* The plugin's keys stay in the document, ready for optbind. */
struct src_cfg {
	const char *host;
	int tls;
	const char *master_user;
	const char *master_password;
};

static void test_endpoint_options_bind(void **state)
{
	(void)state;
	static const char *const tls[] = {"implicit", "starttls", "none", NULL};
	static const struct gw_option opts[] = {
	        {.name = "host", .type = GW_OPT_STRING, .offset = offsetof(struct src_cfg, host)},
	        {.name = "tls",
	         .type = GW_OPT_ENUM,
	         .offset = offsetof(struct src_cfg, tls),
	         .choices = tls},
	        {.name = "master_user",
	         .type = GW_OPT_STRING,
	         .offset = offsetof(struct src_cfg, master_user)},
	        {.name = "master_password",
	         .type = GW_OPT_SECRET,
	         .offset = offsetof(struct src_cfg, master_password)},
	        GW_OPTION_END,
	};
	static const char *const skip[] = {"plugin", NULL};
	setenv("DOVECOT_MASTER_PASSWORD", "master-secret-9", 1);
	struct gw_profile *p = load_ok(PROFILES "/full.yaml");
	const struct gw_endpoint_cfg *ep = &p->pipelines[0].source;
	struct src_cfg cfg = {0};
	struct gw_optstore *store = NULL;
	struct gw_diag diag = {0};
	assert_true(gw_options_bind(opts, &p->doc, ep->options_node, p->path, ep->key_path, skip,
	                            &cfg, &store, &diag));
	assert_string_equal(cfg.host, "imap.example.org");
	assert_int_equal(cfg.tls, 0);
	assert_string_equal(cfg.master_user, "admin");
	assert_string_equal(cfg.master_password, "master-secret-9");
	gw_optstore_free(store);

	/* the sink's keys are not this table's: reported at their own place */
	const struct gw_endpoint_cfg *sink = &p->pipelines[0].sink;
	memset(&cfg, 0, sizeof(cfg));
	store = NULL;
	assert_false(gw_options_bind(opts, &p->doc, sink->options_node, p->path, sink->key_path,
	                             skip, &cfg, &store, &diag));
	assert_int_equal(diag.count, 2);
	char *text = diag_text(&diag);
	assert_string_equal(text, PROFILES "/full.yaml:16:7: error: pipelines[0].sink: unknown key "
	                                   "'tenant'; valid keys: host, tls, master_user, "
	                                   "master_password, plugin\n" PROFILES
	                                   "/full.yaml:17:7: error: pipelines[0].sink: unknown key "
	                                   "'client_secret'; valid keys: host, tls, master_user, "
	                                   "master_password, plugin\n");
	free(text);
	gw_diag_free(&diag);
	gw_optstore_free(store);
	gw_profile_free(p);
}

int main(void)
{
	const size_t n_bad = sizeof(bad_cases) / sizeof(bad_cases[0]);
	const struct CMUnitTest fixed[] = {
	        cmocka_unit_test(test_missing_file),
	        cmocka_unit_test(test_full_profile),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_relative_paths),
	        cmocka_unit_test(test_endpoint_options_bind),
	};
	const size_t n_fixed = sizeof(fixed) / sizeof(fixed[0]);
	struct CMUnitTest *tests = gw_xcalloc(n_bad + n_fixed, sizeof(*tests));
	for (size_t i = 0; i < n_bad; i++) {
		tests[i].name = bad_cases[i].name;
		tests[i].test_func = run_bad_case;
		tests[i].initial_state = (void *)&bad_cases[i];
	}
	memcpy(tests + n_bad, fixed, sizeof(fixed));
	int rc = _cmocka_run_group_tests("profile", tests, n_bad + n_fixed, group_setup,
	                                 group_teardown);
	free(tests);
	return rc;
}
