/* The plugin loader against real shared objects built by tests/plugins: the
 * good ones load and work through the host table, each bad one is refused
 * with one exact line and nothing of it is kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../plugins/test_plugin_ops.h"
#include "loader.h"
#include "log.h"
#include "util.h"

#define PLUGIN_DIR GW_TEST_PLUGIN_DIR

static void init_with_cli(struct gw_loader *l, const char *dir)
{
	const char *dirs[] = {dir};
	gw_loader_init(l, dirs, 1, NULL, 0);
}

static int clear_env(void **state)
{
	(void)state;
	unsetenv("GODWIT_PLUGIN_PATH");
	return 0;
}

/* ---- the good plugins work ---- */

static gw_status collect_folder(void *arg, const struct gw_folder_info *folder)
{
	gw_buf_printf(arg, "%s(%d) ", folder->name, (int)folder->role);
	return GW_OK;
}

static gw_status collect_uid(void *arg, const struct gw_message_meta *meta)
{
	gw_buf_printf(arg, "%u:%llu ", meta->uid, (unsigned long long)meta->size);
	return GW_OK;
}

static gw_status fetch_begin(void *arg, uint32_t uid, uint64_t size)
{
	gw_buf_printf(arg, "[%u %llu ", uid, (unsigned long long)size);
	return GW_OK;
}

static gw_status fetch_data(void *arg, const void *bytes, size_t length)
{
	gw_buf_append(arg, bytes, length);
	return GW_OK;
}

static gw_status fetch_end(void *arg, uint32_t uid)
{
	gw_buf_printf(arg, " %u]", uid);
	return GW_OK;
}

static void test_good_source_loads_and_works(void **state)
{
	(void)state;
	struct gw_loader l;
	init_with_cli(&l, PLUGIN_DIR);
	char *error = NULL;
	const struct gw_loaded_plugin *p = gw_loader_load(&l, GW_PLUGIN_SOURCE, "testgood", &error);
	assert_null(error);
	assert_non_null(p);
	assert_string_equal(p->path, PLUGIN_DIR "/gw-source-testgood.so");
	assert_int_equal(p->desc.kind, GW_PLUGIN_SOURCE);
	assert_string_equal(p->desc.name, "testgood");
	assert_string_equal(p->desc.version, "1.2.3");
	assert_string_equal(p->desc.description, "Test source for the loader tests");
	assert_string_equal(p->desc.license, "MIT");
	assert_int_equal(p->desc.capabilities, GW_CAP_INTERNALDATE);
	assert_int_equal(p->desc.config_size, sizeof(struct test_config));
	assert_string_equal(p->desc.options[2].name, "mode");
	assert_null(p->desc.options[3].name);
	assert_int_equal(p->source.struct_size, sizeof(struct gw_source_ops));
	assert_null(p->sink.open);

	/* Called through the copied table, with the real host table. */
	FILE *capture = tmpfile();
	gw_log_set_stream(capture);
	struct test_config config = {.host = "imap.example.org", .port = 993};
	struct gw_ctx ctx = {.pipeline = "t"};
	void *plugin_state = NULL, *session = NULL;
	assert_int_equal(p->source.init(gw_host_table(), &ctx, &config, &plugin_state), GW_OK);
	gw_log_set_stream(NULL);
	char line[256] = "";
	rewind(capture);
	assert_non_null(fgets(line, sizeof(line), capture));
	fclose(capture);
	assert_string_equal(line + 21, "info [t]: test plugin init for imap.example.org\n");

	struct gw_mailbox mbx = {.struct_size = sizeof(mbx), .email = "a@example.org"};
	assert_int_equal(p->source.open(plugin_state, &ctx, &mbx, &session), GW_OK);
	struct gw_buf seen = {0};
	assert_int_equal(p->source.list_folders(session, collect_folder, &seen), GW_OK);
	struct gw_folder_status status = {.struct_size = sizeof(status)};
	assert_int_equal(p->source.select_folder(session, "INBOX", &status), GW_OK);
	assert_int_equal(status.uidvalidity, 42);
	struct gw_scan_request scan = {.struct_size = sizeof(scan), .uid_min = 1};
	assert_int_equal(p->source.scan(session, &scan, collect_uid, &seen), GW_OK);
	uint32_t uids[] = {2, 1};
	struct gw_fetch_request fetch = {.struct_size = sizeof(fetch), .uids = uids, .count = 2};
	struct gw_fetch_target target = {.struct_size = sizeof(target),
	                                 .arg = &seen,
	                                 .begin = fetch_begin,
	                                 .data = fetch_data,
	                                 .end = fetch_end};
	assert_int_equal(p->source.fetch(session, &fetch, &target), GW_OK);
	assert_string_equal(seen.data, "INBOX(1) Sent(2) 1:5 2:5 [2 5 hello 2][1 5 hello 1]");
	p->source.close(session);
	p->source.fini(plugin_state);
	gw_buf_free(&seen);
	gw_loader_free(&l);
	assert_int_equal(l.plugin_count, 0);
	assert_null(l.dirs);
}

static void test_good_sink_loads_and_works(void **state)
{
	(void)state;
	struct gw_loader l;
	init_with_cli(&l, PLUGIN_DIR);
	char *error = NULL;
	const struct gw_loaded_plugin *p = gw_loader_load(&l, GW_PLUGIN_SINK, "testgood", &error);
	assert_null(error);
	assert_non_null(p);
	assert_string_equal(p->path, PLUGIN_DIR "/gw-sink-testgood.so");
	assert_int_equal(p->desc.kind, GW_PLUGIN_SINK);
	assert_string_equal(p->desc.version, "0.9.0");
	assert_null(p->desc.options);
	assert_null(p->source.open);
	assert_null(p->sink.lookup);

	void *plugin_state = NULL, *session = NULL, *folder = NULL;
	FILE *quiet = tmpfile();
	gw_log_set_stream(quiet);
	assert_int_equal(p->sink.init(gw_host_table(), NULL, NULL, &plugin_state), GW_OK);
	gw_log_set_stream(NULL);
	fclose(quiet);
	struct gw_mailbox mbx = {.struct_size = sizeof(mbx), .email = "a@example.org"};
	assert_int_equal(p->sink.open(plugin_state, NULL, &mbx, &session), GW_OK);
	const char *components[] = {"Archive", "2019"};
	struct gw_folder_path path = {
	        .struct_size = sizeof(path), .count = 2, .components = components};
	char folder_id[GW_SINK_ID_MAX];
	assert_int_equal(p->sink.ensure_folder(session, &path, &folder, folder_id), GW_OK);
	assert_string_equal(folder_id, ".Archive.2019");
	struct gw_message msg = {
	        .struct_size = sizeof(msg), .data = (const unsigned char *)"abc", .size = 3};
	struct gw_sink_item item = {
	        .struct_size = sizeof(item), .message = &msg, .origin_key = "k1"};
	char message_id[GW_SINK_ID_MAX];
	assert_int_equal(p->sink.append(session, folder, &item, message_id), GW_OK);
	assert_string_equal(message_id, "3-k1");
	assert_int_equal(p->sink.flush(session), GW_OK);
	p->sink.close(session);
	p->sink.fini(plugin_state);
	gw_loader_free(&l);
}

static void test_same_plugin_loaded_once(void **state)
{
	(void)state;
	struct gw_loader l;
	init_with_cli(&l, PLUGIN_DIR);
	char *error = NULL;
	const struct gw_loaded_plugin *a = gw_loader_load(&l, GW_PLUGIN_SOURCE, "testgood", &error);
	const struct gw_loaded_plugin *b = gw_loader_load(&l, GW_PLUGIN_SOURCE, "testgood", &error);
	const struct gw_loaded_plugin *c =
	        gw_loader_load_file(&l, PLUGIN_DIR "/gw-source-testgood.so", &error);
	const struct gw_loaded_plugin *sink =
	        gw_loader_load(&l, GW_PLUGIN_SINK, "testgood", &error);
	assert_null(error);
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_ptr_equal(a, c);
	assert_ptr_not_equal(a, sink);
	assert_int_equal(l.plugin_count, 2);
	gw_loader_free(&l);
}

static void test_dash_in_name_means_underscore_in_symbol(void **state)
{
	(void)state;
	struct gw_loader l;
	init_with_cli(&l, PLUGIN_DIR);
	char *error = NULL;
	const struct gw_loaded_plugin *p =
	        gw_loader_load(&l, GW_PLUGIN_SOURCE, "dash-name", &error);
	assert_null(error);
	assert_non_null(p);
	assert_string_equal(p->desc.name, "dash-name");
	gw_loader_free(&l);
}

/* ---- each bad plugin is refused with its reason ---- */

struct refusal {
	enum gw_plugin_kind kind;
	const char *name;
	const char *reason;
};

static void assert_refused(const struct refusal *r)
{
	struct gw_loader l;
	init_with_cli(&l, PLUGIN_DIR);
	char *expected = gw_xasprintf(PLUGIN_DIR "/gw-%s-%s.so: %s", gw_plugin_kind_name(r->kind),
	                              r->name, r->reason);
	for (int attempt = 0; attempt < 2; attempt++) {
		char *error = NULL;
		const struct gw_loaded_plugin *p = gw_loader_load(&l, r->kind, r->name, &error);
		assert_null(p);
		assert_non_null(error);
		assert_string_equal(error, expected);
		assert_null(strchr(error, '\n'));
		assert_int_equal(l.plugin_count, 0); /* nothing of a refused plugin is kept */
		free(error);
	}
	free(expected);
	gw_loader_free(&l);
}

static void test_refusals(void **state)
{
	(void)state;
	char too_large[200], small_ops[200], opt_range[200];
	snprintf(too_large, sizeof(too_large),
	         "descriptor struct_size %zu is larger than the %zu bytes this godwit knows "
	         "(plugin built for a newer godwit?)",
	         sizeof(struct gw_plugin) + 64, sizeof(struct gw_plugin));
	snprintf(small_ops, sizeof(small_ops),
	         "sink operation table struct_size %zu is smaller than the %zu bytes of ABI 1.0",
	         sizeof(size_t), offsetof(struct gw_sink_ops, close) + sizeof(void *));
	snprintf(opt_range, sizeof(opt_range),
	         "option 'port' at offset %zu does not fit in config_size %zu",
	         sizeof(struct test_config), sizeof(struct test_config));
	const struct refusal refusals[] = {
	        {GW_PLUGIN_SOURCE, "badmajor", "built for ABI 2.0, this godwit has ABI 1.5"},
	        {GW_PLUGIN_SOURCE, "newminor", "built for ABI 1.6, this godwit has ABI 1.5"},
	        {GW_PLUGIN_SOURCE, "toolarge", too_large},
	        {GW_PLUGIN_SOURCE, "noentry", "missing entry symbol gw_source_noentry_entry"},
	        {GW_PLUGIN_SOURCE, "wrongkind", "is a sink plugin, but the file name says source"},
	        {GW_PLUGIN_SOURCE, "badname",
	         "descriptor name 'othername' does not match the file name's 'badname'"},
	        {GW_PLUGIN_SOURCE, "noscan", "required source operation 'scan' is missing"},
	        {GW_PLUGIN_SINK, "bothops", "sink plugin also has a source operation table"},
	        {GW_PLUGIN_SINK, "smallops", small_ops},
	        {GW_PLUGIN_SINK, "halfflush",
	         "sink operations 'flush_begin' and 'flush_wait' come together; the plugin has "
	         "only one of them"},
	        {GW_PLUGIN_SOURCE, "dupopt", "option 'host' is declared twice"},
	        {GW_PLUGIN_SOURCE, "optrange", opt_range},
	        {GW_PLUGIN_SOURCE, "badopttype", "option 'port' has an invalid type 99"},
	};
	/* The ABI expectations above are written for a 1.5 host. */
	assert_int_equal(GW_ABI_MAJOR, 1);
	assert_int_equal(GW_ABI_MINOR, 5);
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		assert_refused(&refusals[i]);
}

static void test_bad_file_names_and_plugin_names(void **state)
{
	(void)state;
	struct gw_loader l;
	init_with_cli(&l, PLUGIN_DIR);
	char *error = NULL;
	assert_null(gw_loader_load(&l, GW_PLUGIN_SOURCE, "../tests/plugins/testgood", &error));
	assert_string_equal(error, "invalid plugin name '../tests/plugins/testgood' (letters, "
	                           "digits, '-' and '_' only)");
	free(error);
	assert_null(gw_loader_load(&l, GW_PLUGIN_SINK, "", &error));
	assert_string_equal(error, "invalid plugin name '' (letters, digits, '-' and '_' only)");
	free(error);
	assert_null(gw_loader_load_file(&l, "/tmp/libsomething.so", &error));
	assert_string_equal(error,
	                    "/tmp/libsomething.so: file name is not gw-<source|sink>-<name>.so");
	free(error);
	assert_null(gw_loader_load_file(&l, "/tmp/gw-filter-x.so", &error));
	assert_string_equal(error,
	                    "/tmp/gw-filter-x.so: file name is not gw-<source|sink>-<name>.so");
	free(error);
	gw_loader_free(&l);
}

static char *make_temp_dir(void)
{
	char *dir = gw_xstrdup("/tmp/gw-loader-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void test_not_a_shared_object(void **state)
{
	(void)state;
	char *dir = make_temp_dir();
	char *path = gw_xasprintf("%s/gw-source-garbage.so", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not an ELF file\n", f);
	fclose(f);
	struct gw_loader l;
	init_with_cli(&l, dir);
	char *error = NULL;
	assert_null(gw_loader_load(&l, GW_PLUGIN_SOURCE, "garbage", &error));
	char *prefix = gw_xasprintf("%s: cannot load: ", path);
	assert_non_null(error);
	assert_memory_equal(error, prefix, strlen(prefix));
	assert_true(strlen(error) > strlen(prefix));
	free(prefix);
	free(error);
	gw_loader_free(&l);
	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
}

/* ---- search path ---- */

static void test_not_found_lists_every_directory(void **state)
{
	(void)state;
	setenv("GODWIT_PLUGIN_PATH", "/nonexistent/env1::/nonexistent/env2:", 1);
	const char *cli[] = {"/nonexistent/cli"};
	const char *profile[] = {"/nonexistent/profile", "/nonexistent/cli"};
	struct gw_loader l;
	gw_loader_init(&l, cli, 1, profile, 2);
	unsetenv("GODWIT_PLUGIN_PATH");
	/* Search order, duplicates once, empty entries skipped. */
	assert_int_equal(l.dir_count, 6);
	assert_string_equal(l.dirs[0], "/nonexistent/cli");
	assert_string_equal(l.dirs[1], "/nonexistent/profile");
	assert_string_equal(l.dirs[2], "/nonexistent/env1");
	assert_string_equal(l.dirs[3], "/nonexistent/env2");
	assert_string_equal(l.dirs[4], GW_BUILD_PLUGIN_DIR);
	const char *suffix = "/godwit/plugins";
	size_t len = strlen(l.dirs[5]);
	assert_true(len > strlen(suffix));
	assert_string_equal(l.dirs[5] + len - strlen(suffix), suffix);

	char *error = NULL;
	assert_null(gw_loader_load(&l, GW_PLUGIN_SOURCE, "foo", &error));
	char *expected = gw_xasprintf(
	        "source plugin 'foo' not found (looked for gw-source-foo.so in: /nonexistent/cli, "
	        "/nonexistent/profile, /nonexistent/env1, /nonexistent/env2, %s, %s)",
	        GW_BUILD_PLUGIN_DIR, l.dirs[5]);
	assert_string_equal(error, expected);
	free(expected);
	free(error);
	gw_loader_free(&l);
}

static void test_plugin_path_environment_is_honoured(void **state)
{
	(void)state;
	setenv("GODWIT_PLUGIN_PATH", "/nonexistent/a:" PLUGIN_DIR, 1);
	struct gw_loader l;
	gw_loader_init(&l, NULL, 0, NULL, 0);
	unsetenv("GODWIT_PLUGIN_PATH");
	char *error = NULL;
	const struct gw_loaded_plugin *p = gw_loader_load(&l, GW_PLUGIN_SINK, "testgood", &error);
	assert_null(error);
	assert_non_null(p);
	assert_string_equal(p->path, PLUGIN_DIR "/gw-sink-testgood.so");
	gw_loader_free(&l);

	/* Without it, the test plugins are nowhere on the search path. */
	gw_loader_init(&l, NULL, 0, NULL, 0);
	assert_null(gw_loader_load(&l, GW_PLUGIN_SINK, "testgood", &error));
	assert_non_null(strstr(error, "sink plugin 'testgood' not found"));
	free(error);
	gw_loader_free(&l);
}

/* A directory holding a link named @p file to the test plugin @p target. */
static char *dir_with_link(const char *file, const char *target)
{
	char *dir = make_temp_dir();
	char *link_path = gw_xasprintf("%s/%s", dir, file);
	char *target_path = gw_xasprintf("%s/%s", PLUGIN_DIR, target);
	assert_int_equal(symlink(target_path, link_path), 0);
	free(link_path);
	free(target_path);
	return dir;
}

static void remove_dir_with_link(char *dir, const char *file)
{
	char *link_path = gw_xasprintf("%s/%s", dir, file);
	unlink(link_path);
	rmdir(dir);
	free(link_path);
	free(dir);
}

static void test_cli_dirs_before_profile_dirs(void **state)
{
	(void)state;
	char *dir = dir_with_link("gw-source-testgood.so", "gw-source-testgood.so");
	const char *first[] = {dir};
	const char *second[] = {PLUGIN_DIR};
	char *expected = gw_xasprintf("%s/gw-source-testgood.so", dir);
	char *error = NULL;
	struct gw_loader l;

	gw_loader_init(&l, first, 1, second, 1);
	const struct gw_loaded_plugin *p = gw_loader_load(&l, GW_PLUGIN_SOURCE, "testgood", &error);
	assert_non_null(p);
	assert_string_equal(p->path, expected);
	gw_loader_free(&l);

	gw_loader_init(&l, second, 1, first, 1);
	p = gw_loader_load(&l, GW_PLUGIN_SOURCE, "testgood", &error);
	assert_non_null(p);
	assert_string_equal(p->path, PLUGIN_DIR "/gw-source-testgood.so");
	gw_loader_free(&l);
	free(expected);
	remove_dir_with_link(dir, "gw-source-testgood.so");
}

/* A refused file in the first directory is the answer: the loader does not
 * silently fall back to another copy further down the path. */
static void test_first_directory_with_the_file_decides(void **state)
{
	(void)state;
	char *dir = dir_with_link("gw-source-testgood.so", "gw-source-badname.so");
	const char *dirs[] = {dir, PLUGIN_DIR};
	struct gw_loader l;
	gw_loader_init(&l, dirs, 2, NULL, 0);
	char *error = NULL;
	assert_null(gw_loader_load(&l, GW_PLUGIN_SOURCE, "testgood", &error));
	/* The file is another plugin under this name: it lacks the entry the name promises. */
	char *expected = gw_xasprintf(
	        "%s/gw-source-testgood.so: missing entry symbol gw_source_testgood_entry", dir);
	assert_string_equal(error, expected);
	free(expected);
	free(error);
	gw_loader_free(&l);
	remove_dir_with_link(dir, "gw-source-testgood.so");
}

/* ---- discovery ---- */

struct found {
	struct gw_buf loaded; /* "kind name path\n" for plugins under the test dirs */
	struct gw_buf errors; /* messages about files under the test dirs */
	const char *dirs[2];
};

static bool under_test_dirs(const struct found *f, const char *text)
{
	for (size_t i = 0; i < 2; i++) {
		if (strncmp(text, f->dirs[i], strlen(f->dirs[i])) == 0)
			return true;
	}
	return false;
}

static void on_plugin(const struct gw_loaded_plugin *p, void *arg)
{
	struct found *f = arg;
	if (under_test_dirs(f, p->path))
		gw_buf_printf(&f->loaded, "%s %s %s\n", gw_plugin_kind_name(p->desc.kind),
		              p->desc.name, p->path);
}

static void on_error(const char *message, void *arg)
{
	struct found *f = arg;
	if (under_test_dirs(f, message))
		gw_buf_printf(&f->errors, "%s\n", message);
}

static void test_discover(void **state)
{
	(void)state;
	/* The linked copy comes first on the path: it wins, the original is ignored. */
	char *dir = dir_with_link("gw-source-testgood.so", "gw-source-testgood.so");
	const char *dirs[] = {dir, PLUGIN_DIR};
	struct gw_loader l;
	gw_loader_init(&l, dirs, 2, NULL, 0);
	struct found f = {.dirs = {dir, PLUGIN_DIR}};
	gw_loader_discover(&l, on_plugin, on_error, &f);

	char *loaded =
	        gw_xasprintf("source testgood %s/gw-source-testgood.so\n"
	                     "sink probe-background " PLUGIN_DIR "/gw-sink-probe-background.so\n"
	                     "sink probe-direct " PLUGIN_DIR "/gw-sink-probe-direct.so\n"
	                     "sink testgood " PLUGIN_DIR "/gw-sink-testgood.so\n"
	                     "source dash-name " PLUGIN_DIR "/gw-source-dash-name.so\n"
	                     "source imapserial " PLUGIN_DIR "/gw-source-imapserial.so\n",
	                     dir);
	assert_string_equal(f.loaded.data, loaded);
	/* Alphabetical within a directory; one line per refused file. */
	const char *bad_files[] = {
	        "gw-sink-bothops.so",    "gw-sink-halfflush.so",  "gw-sink-smallops.so",
	        "gw-source-badmajor.so", "gw-source-badname.so",  "gw-source-badopttype.so",
	        "gw-source-dupopt.so",   "gw-source-newminor.so", "gw-source-noentry.so",
	        "gw-source-noscan.so",   "gw-source-optrange.so", "gw-source-toolarge.so",
	        "gw-source-wrongkind.so"};
	char *errors = f.errors.data;
	for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		char *prefix = gw_xasprintf(PLUGIN_DIR "/%s: ", bad_files[i]);
		assert_non_null(errors);
		assert_memory_equal(errors, prefix, strlen(prefix));
		errors = strchr(errors, '\n') + 1;
		free(prefix);
	}
	assert_string_equal(errors, "");
	/* Discovered plugins are loaded: asking again gives the same one. */
	char *error = NULL;
	const struct gw_loaded_plugin *p = gw_loader_load(&l, GW_PLUGIN_SOURCE, "testgood", &error);
	assert_non_null(p);
	assert_string_equal(p->path + strlen(dir), "/gw-source-testgood.so");

	free(loaded);
	gw_buf_free(&f.loaded);
	gw_buf_free(&f.errors);
	gw_loader_free(&l);
	remove_dir_with_link(dir, "gw-source-testgood.so");
}

static void test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(gw_plugin_kind_name(GW_PLUGIN_SOURCE), "source");
	assert_string_equal(gw_plugin_kind_name(GW_PLUGIN_SINK), "sink");
	assert_string_equal(gw_plugin_kind_name((enum gw_plugin_kind)7), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_good_source_loads_and_works, clear_env),
	        cmocka_unit_test_setup(test_good_sink_loads_and_works, clear_env),
	        cmocka_unit_test_setup(test_same_plugin_loaded_once, clear_env),
	        cmocka_unit_test_setup(test_dash_in_name_means_underscore_in_symbol, clear_env),
	        cmocka_unit_test_setup(test_refusals, clear_env),
	        cmocka_unit_test_setup(test_bad_file_names_and_plugin_names, clear_env),
	        cmocka_unit_test_setup(test_not_a_shared_object, clear_env),
	        cmocka_unit_test_setup(test_not_found_lists_every_directory, clear_env),
	        cmocka_unit_test_setup(test_plugin_path_environment_is_honoured, clear_env),
	        cmocka_unit_test_setup(test_cli_dirs_before_profile_dirs, clear_env),
	        cmocka_unit_test_setup(test_first_directory_with_the_file_decides, clear_env),
	        cmocka_unit_test_setup(test_discover, clear_env),
	        cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
