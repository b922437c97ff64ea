/* optbind.c: a test option table with every type, bound from YAML text.
 * Every error is asserted as the exact "file:line:col: error: message". */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "optbind.h"
#include "util.h"

struct test_cfg {
	const char *host;
	int64_t port;
	bool verbose;
	uint64_t max_size;
	uint64_t timeout;
	int tls;
	struct gw_str_list folders;
	const char *password;
	const char *label;
};

static const char *const tls_choices[] = {"implicit", "starttls", "none", NULL};

static const struct gw_option test_options[] = {
        {.name = "host",
         .type = GW_OPT_STRING,
         .flags = GW_OPT_REQUIRED,
         .offset = offsetof(struct test_cfg, host),
         .description = "server"},
        {.name = "port",
         .type = GW_OPT_INT,
         .default_value = "993",
         .offset = offsetof(struct test_cfg, port)},
        {.name = "verbose",
         .type = GW_OPT_BOOL,
         .default_value = "no",
         .offset = offsetof(struct test_cfg, verbose)},
        {.name = "max_size",
         .type = GW_OPT_SIZE,
         .default_value = "35MB",
         .offset = offsetof(struct test_cfg, max_size)},
        {.name = "timeout",
         .type = GW_OPT_DURATION,
         .default_value = "30s",
         .offset = offsetof(struct test_cfg, timeout)},
        {.name = "tls",
         .type = GW_OPT_ENUM,
         .default_value = "implicit",
         .offset = offsetof(struct test_cfg, tls),
         .choices = tls_choices},
        {.name = "folders", .type = GW_OPT_LIST, .offset = offsetof(struct test_cfg, folders)},
        {.name = "password", .type = GW_OPT_SECRET, .offset = offsetof(struct test_cfg, password)},
        {.name = "label", .type = GW_OPT_STRING, .offset = offsetof(struct test_cfg, label)},
        GW_OPTION_END,
};

static const char *const skip_plugin[] = {"plugin", NULL};

static char temp_dir[] = "/tmp/gw-test-optbind-XXXXXX";

struct bound {
	yaml_document_t doc;
	struct test_cfg cfg;
	struct gw_optstore *store;
	struct gw_diag diag;
	bool ok;
};

static void load_yaml(yaml_document_t *doc, const char *yaml)
{
	yaml_parser_t parser;
	assert_true(yaml_parser_initialize(&parser));
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
	assert_true(yaml_parser_load(&parser, doc));
	yaml_parser_delete(&parser);
}

/* Bind the document's root mapping ("" binds defaults only). */
static struct bound *bind_text(const char *yaml, const struct gw_option *table)
{
	struct bound *b = gw_xcalloc(1, sizeof(*b));
	load_yaml(&b->doc, *yaml ? yaml : "{}");
	int root = *yaml ? 1 : 0;
	b->ok = gw_options_bind(table, &b->doc, root, "opts.yaml", "pipelines[0].source",
	                        skip_plugin, &b->cfg, &b->store, &b->diag);
	return b;
}

static void free_bound(struct bound *b)
{
	gw_optstore_free(b->store);
	gw_diag_free(&b->diag);
	yaml_document_delete(&b->doc);
	free(b);
}

/* The diagnostics, formatted, one per line. */
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

static void expect_errors(const char *yaml, const char *expected)
{
	struct bound *b = bind_text(yaml, test_options);
	char *text = diag_text(&b->diag);
	assert_string_equal(text, expected);
	assert_false(b->ok);
	free(text);
	free_bound(b);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(temp_dir) ? 0 : -1;
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

static void test_all_types(void **state)
{
	(void)state;
	setenv("GW_OPT_TEST_PW", "env-password-1", 1);
	struct bound *b = bind_text("plugin: imap\n"
	                            "host: imap.example.org\n"
	                            "port: 143\n"
	                            "verbose: yes\n"
	                            "max_size: 1.5GiB\n"
	                            "timeout: 500ms\n"
	                            "tls: starttls\n"
	                            "folders: [INBOX, 'Sent Items']\n"
	                            "password: ${GW_OPT_TEST_PW}\n"
	                            "label: \"\"\n",
	                            test_options);
	assert_int_equal(b->diag.count, 0);
	assert_true(b->ok);
	assert_string_equal(b->cfg.host, "imap.example.org");
	assert_int_equal(b->cfg.port, 143);
	assert_true(b->cfg.verbose);
	assert_int_equal(b->cfg.max_size, 1610612736ull);
	assert_int_equal(b->cfg.timeout, 500);
	assert_int_equal(b->cfg.tls, 1);
	assert_int_equal(b->cfg.folders.count, 2);
	assert_string_equal(b->cfg.folders.items[0], "INBOX");
	assert_string_equal(b->cfg.folders.items[1], "Sent Items");
	assert_string_equal(b->cfg.password, "env-password-1");
	assert_string_equal(b->cfg.label, ""); /* quoted empty is a value */
	free_bound(b);
}

static void test_defaults(void **state)
{
	(void)state;
	struct bound *b = bind_text("host: h\n", test_options);
	assert_true(b->ok);
	assert_int_equal(b->cfg.port, 993);
	assert_false(b->cfg.verbose);
	assert_int_equal(b->cfg.max_size, 35000000);
	assert_int_equal(b->cfg.timeout, 30000);
	assert_int_equal(b->cfg.tls, 0);
	assert_int_equal(b->cfg.folders.count, 0);
	assert_null(b->cfg.folders.items);
	assert_null(b->cfg.password);
	assert_null(b->cfg.label);
	free_bound(b);
}

static void test_list_from_scalar(void **state)
{
	(void)state;
	struct bound *b = bind_text("host: h\nfolders: INBOX\n", test_options);
	assert_true(b->ok);
	assert_int_equal(b->cfg.folders.count, 1);
	assert_string_equal(b->cfg.folders.items[0], "INBOX");
	free_bound(b);
	b = bind_text("host: h\nfolders: []\n", test_options);
	assert_true(b->ok);
	assert_int_equal(b->cfg.folders.count, 0);
	free_bound(b);
}

static void test_unknown_key(void **state)
{
	(void)state;
	expect_errors("host: h\nprot: 1\n",
	              "opts.yaml:2:1: error: pipelines[0].source: unknown key 'prot' (did you mean "
	              "'port'?); valid keys: host, port, verbose, max_size, timeout, tls, folders, "
	              "password, label, plugin\n");
	expect_errors(
	        "host: h\n  \nplugn: imap\n",
	        "opts.yaml:3:1: error: pipelines[0].source: unknown key 'plugn' (did you mean "
	        "'plugin'?); valid keys: host, port, verbose, max_size, timeout, tls, "
	        "folders, password, label, plugin\n");
	expect_errors("host: h\nquantum_flux: 1\n",
	              "opts.yaml:2:1: error: pipelines[0].source: unknown key 'quantum_flux'; "
	              "valid keys: host, port, verbose, max_size, timeout, tls, folders, password, "
	              "label, plugin\n");
}

static void test_missing_required(void **state)
{
	(void)state;
	expect_errors("port: 1\n",
	              "opts.yaml:1:1: error: pipelines[0].source: missing required key 'host' "
	              "(string)\n");
	/* no mapping at all: nothing to point at but the file */
	expect_errors("", "opts.yaml: error: pipelines[0].source: missing required key 'host' "
	                  "(string)\n");
}

static void test_type_errors(void **state)
{
	(void)state;
	expect_errors("host: h\nport: abc\n",
	              "opts.yaml:2:7: error: pipelines[0].source.port: expected an integer, got "
	              "'abc'\n");
	expect_errors("host: h\nport: 99999999999999999999\n",
	              "opts.yaml:2:7: error: pipelines[0].source.port: expected an integer, got "
	              "'99999999999999999999'\n");
	expect_errors("host: {a: 1}\n",
	              "opts.yaml:1:7: error: pipelines[0].source.host: expected a string, got a "
	              "mapping\n");
	expect_errors("host: h\nport: [1]\n",
	              "opts.yaml:2:7: error: pipelines[0].source.port: expected an integer, got "
	              "a sequence\n");
	expect_errors("host: h\nverbose: maybe\n",
	              "opts.yaml:2:10: error: pipelines[0].source.verbose: expected true or false "
	              "(or yes/no, on/off), got 'maybe'\n");
	expect_errors("host: h\nmax_size: 35XB\n",
	              "opts.yaml:2:11: error: pipelines[0].source.max_size: expected a size such "
	              "as 35MB, 512KiB or 100 (bytes), got '35XB'\n");
	expect_errors("host: h\ntimeout: 5w\n",
	              "opts.yaml:2:10: error: pipelines[0].source.timeout: expected a duration "
	              "such as 500ms, 30s, 5m, 1h or 2d, got '5w'\n");
	expect_errors("host: h\ntls: ssl\n",
	              "opts.yaml:2:6: error: pipelines[0].source.tls: expected one of implicit, "
	              "starttls, none, got 'ssl'\n");
	expect_errors("host: h\ntls: Implicit\n",
	              "opts.yaml:2:6: error: pipelines[0].source.tls: expected one of implicit, "
	              "starttls, none, got 'Implicit'\n");
	expect_errors("host: h\nfolders: {a: b}\n",
	              "opts.yaml:2:10: error: pipelines[0].source.folders: expected a list of "
	              "strings, got a mapping\n");
	expect_errors("host: h\nfolders:\n  - a\n  - [b]\n",
	              "opts.yaml:4:5: error: pipelines[0].source.folders[1]: expected a string, "
	              "got a sequence\n");
	expect_errors("host: h\nport:\n",
	              "opts.yaml:2:6: error: pipelines[0].source.port: missing value (expected an "
	              "integer)\n");
	expect_errors("host: h\ntls: [a]\n",
	              "opts.yaml:2:6: error: pipelines[0].source.tls: expected one of implicit, "
	              "starttls, none, got a sequence\n");
	expect_errors("? [a]\n: 1\nhost: h\n",
	              "opts.yaml:1:3: error: pipelines[0].source: expected a plain key, got a "
	              "sequence\n");
}

static void test_collects_all_errors(void **state)
{
	(void)state;
	expect_errors("port: x\nverbose: 2\nhots: h\ntls: tls\n",
	              "opts.yaml:1:7: error: pipelines[0].source.port: expected an integer, got "
	              "'x'\n"
	              "opts.yaml:2:10: error: pipelines[0].source.verbose: expected true or false "
	              "(or yes/no, on/off), got '2'\n"
	              "opts.yaml:3:1: error: pipelines[0].source: unknown key 'hots' (did you mean "
	              "'host'?); valid keys: host, port, verbose, max_size, timeout, tls, folders, "
	              "password, label, plugin\n"
	              "opts.yaml:4:6: error: pipelines[0].source.tls: expected one of implicit, "
	              "starttls, none, got 'tls'\n"
	              "opts.yaml:1:1: error: pipelines[0].source: missing required key 'host' "
	              "(string)\n");
}

static void test_duplicate_key(void **state)
{
	(void)state;
	expect_errors("host: a\nport: 1\nhost: b\n",
	              "opts.yaml:3:1: error: pipelines[0].source.host: duplicate key (first set at "
	              "line 1)\n");
}

static void test_not_a_mapping(void **state)
{
	(void)state;
	expect_errors("- a\n- b\n",
	              "opts.yaml:1:1: error: pipelines[0].source: expected a mapping of options, "
	              "got a sequence\n"
	              "opts.yaml:1:1: error: pipelines[0].source: missing required key 'host' "
	              "(string)\n");
}

static void test_secret_from_file(void **state)
{
	(void)state;
	char *path = gw_xasprintf("%s/pw", temp_dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("file-password-2\n", f);
	fclose(f);
	char *yaml = gw_xasprintf("host: h\npassword: ${file:%s}\n", path);
	struct bound *b = bind_text(yaml, test_options);
	assert_true(b->ok);
	assert_string_equal(b->cfg.password, "file-password-2");
	char *masked = gw_log_redact("x file-password-2 y");
	assert_string_equal(masked, "x *** y");
	free(masked);
	free_bound(b);
	free(yaml);
	free(path);
}

static void test_secret_errors(void **state)
{
	(void)state;
	unsetenv("GW_OPT_MISSING");
	expect_errors("host: h\npassword: ${GW_OPT_MISSING}\n",
	              "opts.yaml:2:11: error: pipelines[0].source.password: environment variable "
	              "GW_OPT_MISSING is not set\n");
	expect_errors("host: h\npassword: ${file:/nonexistent/gw-pw}\n",
	              "opts.yaml:2:11: error: pipelines[0].source.password: cannot read secret "
	              "file /nonexistent/gw-pw: No such file or directory\n");
}

/* A skipped table option is the caller's to set: not required, no default. */
static void test_skip_table_option(void **state)
{
	(void)state;
	yaml_document_t doc;
	load_yaml(&doc, "port: 1\nhost: ignored\n");
	struct test_cfg cfg = {0};
	struct gw_optstore *store = NULL;
	struct gw_diag diag = {0};
	static const char *const skip[] = {"host", "port", NULL};
	assert_true(gw_options_bind(test_options, &doc, 1, "opts.yaml", "sink", skip, &cfg, &store,
	                            &diag));
	assert_int_equal(diag.count, 0);
	assert_null(cfg.host);
	assert_int_equal(cfg.port, 0); /* neither the mapping's 1 nor the default 993 */
	assert_int_equal(cfg.timeout, 30000);
	gw_optstore_free(store);
	yaml_document_delete(&doc);

	/* nor listed twice among the valid keys */
	load_yaml(&doc, "hots: x\n");
	memset(&cfg, 0, sizeof(cfg));
	store = NULL;
	assert_false(gw_options_bind(test_options, &doc, 1, "opts.yaml", "sink", skip, &cfg, &store,
	                             &diag));
	char *text = diag_text(&diag);
	assert_string_equal(text, "opts.yaml:1:1: error: sink: unknown key 'hots' (did you mean "
	                          "'host'?); valid keys: host, port, verbose, max_size, timeout, "
	                          "tls, folders, password, label\n");
	free(text);
	gw_diag_free(&diag);
	gw_optstore_free(store);
	yaml_document_delete(&doc);
}

static void test_bad_default(void **state)
{
	(void)state;
	struct opt_cfg {
		uint64_t size;
		int mode;
	};
	static const char *const modes[] = {"a", "b", NULL};
	static const struct gw_option broken[] = {
	        {.name = "size",
	         .type = GW_OPT_SIZE,
	         .default_value = "lots",
	         .offset = offsetof(struct opt_cfg, size)},
	        {.name = "mode",
	         .type = GW_OPT_ENUM,
	         .default_value = "c",
	         .offset = offsetof(struct opt_cfg, mode),
	         .choices = modes},
	        GW_OPTION_END,
	};
	yaml_document_t doc;
	load_yaml(&doc, "{}\n");
	struct opt_cfg cfg = {0};
	struct gw_optstore *store = NULL;
	struct gw_diag diag = {0};
	assert_false(gw_options_bind(broken, &doc, 1, "opts.yaml", "pipelines[0].sink", NULL, &cfg,
	                             &store, &diag));
	char *text = diag_text(&diag);
	assert_string_equal(text,
	                    "opts.yaml:1:1: error: pipelines[0].sink: plugin option 'size' has an "
	                    "invalid default 'lots': expected a size such as 35MB, 512KiB or 100 "
	                    "(bytes), got 'lots'\n"
	                    "opts.yaml:1:1: error: pipelines[0].sink: plugin option 'mode' has an "
	                    "invalid default 'c': expected one of a, b, got 'c'\n");
	free(text);
	gw_diag_free(&diag);
	gw_optstore_free(store);
	yaml_document_delete(&doc);
}

static void test_parse_value(void **state)
{
	(void)state;
	struct test_cfg cfg = {0};
	struct gw_optstore *store = gw_optstore_new(NULL);
	char *error = NULL;
	assert_true(gw_option_parse_value(&test_options[1], "-5", &cfg, store, &error));
	assert_int_equal(cfg.port, -5);
	assert_true(gw_option_parse_value(&test_options[6], "Archive", &cfg, store, &error));
	assert_int_equal(cfg.folders.count, 1);
	assert_string_equal(cfg.folders.items[0], "Archive");
	assert_false(gw_option_parse_value(&test_options[4], "soon", &cfg, store, &error));
	assert_string_equal(error,
	                    "expected a duration such as 500ms, 30s, 5m, 1h or 2d, got 'soon'");
	free(error);
	gw_optstore_free(store);
}

/* Paths in a profile mean the same whichever folder godwit is started from:
 * relative ones are joined to the profile's folder, absolute ones kept. */
static void test_path_relative_to_profile(void **state)
{
	(void)state;
	static const struct gw_option path_option[] = {
	        {.name = "root", .type = GW_OPT_PATH, .offset = 0},
	        GW_OPTION_END,
	};
	const char *bound = NULL;
	char *error = NULL;
	struct gw_optstore *store = gw_optstore_new("/etc/godwit");
	assert_true(gw_option_parse_value(&path_option[0], "./out/{email}", &bound, store, &error));
	assert_string_equal(bound, "/etc/godwit/./out/{email}");
	assert_true(gw_option_parse_value(&path_option[0], "/srv/mail", &bound, store, &error));
	assert_string_equal(bound, "/srv/mail");
	gw_optstore_free(store);

	store = gw_optstore_new(NULL);
	assert_true(gw_option_parse_value(&path_option[0], "rel/dir", &bound, store, &error));
	assert_string_equal(bound, "rel/dir");
	gw_optstore_free(store);
	assert_string_equal(gw_option_type_name(GW_OPT_PATH), "path");
}

static char *print_to_string(const struct test_cfg *cfg)
{
	char *path = gw_xasprintf("%s/print.txt", temp_dir);
	FILE *f = fopen(path, "w+");
	assert_non_null(f);
	gw_options_print(test_options, cfg, f, "    ");
	rewind(f);
	static char out[4096];
	size_t n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	free(path);
	return out;
}

static void test_print(void **state)
{
	(void)state;
	setenv("GW_OPT_PRINT_PW", "print-password-3", 1);
	struct bound *b = bind_text("host: imap.example.org\n"
	                            "port: 143\n"
	                            "max_size: 35MiB\n"
	                            "timeout: 90s\n"
	                            "tls: none\n"
	                            "folders: [INBOX, Sent]\n"
	                            "password: ${GW_OPT_PRINT_PW}\n",
	                            test_options);
	assert_true(b->ok);
	const char *out = print_to_string(&b->cfg);
	assert_string_equal(out, "    host: imap.example.org\n"
	                         "    port: 143\n"
	                         "    verbose: false\n"
	                         "    max_size: 35MiB\n"
	                         "    timeout: 90s\n"
	                         "    tls: none\n"
	                         "    folders: [INBOX, Sent]\n"
	                         "    password: ***\n"
	                         "    label: (unset)\n");
	assert_null(strstr(out, "print-password-3"));
	free_bound(b);

	/* literal secrets are masked too, and odd sizes print as bytes */
	b = bind_text("host: h\npassword: literal-pw-4\nmax_size: 1001\ntimeout: 1500ms\n",
	              test_options);
	assert_true(b->ok);
	out = print_to_string(&b->cfg);
	assert_null(strstr(out, "literal-pw-4"));
	assert_non_null(strstr(out, "    password: ***\n"));
	assert_non_null(strstr(out, "    max_size: 1001\n"));
	assert_non_null(strstr(out, "    timeout: 1500ms\n"));
	char *masked = gw_log_redact("literal-pw-4");
	assert_string_equal(masked, "***");
	free(masked);
	free_bound(b);

	/* defaults print back in the units they parse from */
	b = bind_text("host: h\n", test_options);
	out = print_to_string(&b->cfg);
	assert_non_null(strstr(out, "    max_size: 35MB\n"));
	assert_non_null(strstr(out, "    timeout: 30s\n"));
	assert_non_null(strstr(out, "    tls: implicit\n"));
	assert_non_null(strstr(out, "    password: (unset)\n"));
	assert_non_null(strstr(out, "    folders: []\n"));
	free_bound(b);
}

static void test_type_names(void **state)
{
	(void)state;
	assert_string_equal(gw_option_type_name(GW_OPT_STRING), "string");
	assert_string_equal(gw_option_type_name(GW_OPT_INT), "int");
	assert_string_equal(gw_option_type_name(GW_OPT_BOOL), "bool");
	assert_string_equal(gw_option_type_name(GW_OPT_SIZE), "size");
	assert_string_equal(gw_option_type_name(GW_OPT_DURATION), "duration");
	assert_string_equal(gw_option_type_name(GW_OPT_ENUM), "enum");
	assert_string_equal(gw_option_type_name(GW_OPT_LIST), "list");
	assert_string_equal(gw_option_type_name(GW_OPT_SECRET), "secret");
	assert_string_equal(gw_option_type_name((enum gw_opt_type)99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_all_types),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_list_from_scalar),
	        cmocka_unit_test(test_unknown_key),
	        cmocka_unit_test(test_missing_required),
	        cmocka_unit_test(test_type_errors),
	        cmocka_unit_test(test_collects_all_errors),
	        cmocka_unit_test(test_duplicate_key),
	        cmocka_unit_test(test_not_a_mapping),
	        cmocka_unit_test(test_secret_from_file),
	        cmocka_unit_test(test_secret_errors),
	        cmocka_unit_test(test_bad_default),
	        cmocka_unit_test(test_skip_table_option),
	        cmocka_unit_test(test_parse_value),
	        cmocka_unit_test(test_print),
	        cmocka_unit_test(test_type_names),
	        cmocka_unit_test(test_path_relative_to_profile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
