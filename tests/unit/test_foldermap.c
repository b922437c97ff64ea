/* Folder selection and mapping: include/exclude/map rules, roles, delimiter
 * splitting, name legality and collisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "foldermap.h"

static struct gw_folder_info folder(const char *name, char delimiter, enum gw_folder_role role,
                                    bool selectable)
{
	struct gw_folder_info info = {.struct_size = sizeof(info),
	                              .name = name,
	                              .delimiter = delimiter,
	                              .role = role,
	                              .selectable = selectable};
	return info;
}

/* Maps @p name and checks the resulting components, joined with " | " for one comparison. */
static void assert_maps_to(const struct gw_folder_rules *rules, const char *name, char delimiter,
                           enum gw_folder_role role, const char *expected)
{
	struct gw_folder_info info = folder(name, delimiter, role, true);
	struct gw_mapped_folder m;
	gw_folder_map(rules, &info, &m);
	assert_int_equal(m.disposition, GW_FOLDER_MIGRATE);
	char joined[512] = "";
	for (size_t i = 0; i < m.component_count; i++) {
		if (i > 0)
			strcat(joined, " | ");
		strcat(joined, m.components[i]);
	}
	assert_string_equal(joined, expected);
	assert_int_equal(m.path.count, m.component_count);
	assert_ptr_equal(m.path.components, m.components);
	assert_int_equal(m.path.role, role);
	assert_int_equal(m.path.struct_size, sizeof(m.path));
	gw_mapped_folder_free(&m);
}

static enum gw_folder_disposition disposition_of(const struct gw_folder_rules *rules,
                                                 const char *name, char delimiter,
                                                 enum gw_folder_role role, bool selectable)
{
	struct gw_folder_info info = folder(name, delimiter, role, selectable);
	struct gw_mapped_folder m;
	gw_folder_map(rules, &info, &m);
	enum gw_folder_disposition d = m.disposition;
	gw_mapped_folder_free(&m);
	return d;
}

static void test_pattern_match(void **state)
{
	(void)state;
	size_t cap, len;
	assert_true(gw_folder_pattern_match("Junk", "Junk", &cap, &len));
	assert_int_equal(len, 0);
	assert_false(gw_folder_pattern_match("Junk", "Junk/old", &cap, &len));
	assert_false(gw_folder_pattern_match("Junk", "junk", &cap, &len));
	assert_true(gw_folder_pattern_match("Archives/*", "Archives/2019/Q1", &cap, &len));
	assert_int_equal(cap, 9);
	assert_int_equal(len, 7); /* "2019/Q1": '*' crosses the delimiter */
	assert_false(gw_folder_pattern_match("Archives/*", "Archives", &cap, &len));
	assert_true(gw_folder_pattern_match("*", "", &cap, &len));
	assert_true(gw_folder_pattern_match("*/Old", "A/B/Old", &cap, &len));
	assert_int_equal(cap, 0);
	assert_int_equal(len, 3);
	assert_true(gw_folder_pattern_match("a*b*c", "a12b34c", &cap, &len));
	assert_int_equal(len, 2); /* the first star takes as little as it can */
	assert_false(gw_folder_pattern_match("a*b*c", "a12b34", &cap, &len));
	assert_true(gw_folder_pattern_match("*ä*", "Bücher/März", &cap, &len));
}

static void test_split(void **state)
{
	(void)state;
	char **parts;
	size_t n;
	char *error = NULL;
	assert_true(gw_folder_split("A.B.C", '.', &parts, &n, &error));
	assert_int_equal(n, 3);
	assert_string_equal(parts[0], "A");
	assert_string_equal(parts[2], "C");
	gw_folder_components_free(parts, n);

	assert_true(gw_folder_split("a/b.c", 0, &parts, &n, &error));
	assert_int_equal(n, 1);
	assert_string_equal(parts[0], "a/b.c");
	gw_folder_components_free(parts, n);

	assert_false(gw_folder_split("a//b", '/', &parts, &n, &error));
	assert_string_equal(error, "component 2 of the name is empty (the hierarchy delimiter '/' "
	                           "appears at the start, at the end or twice in a row)");
	free(error);
	assert_false(gw_folder_split("/a", '/', &parts, &n, &error));
	free(error);
	assert_false(gw_folder_split("a.", '.', &parts, &n, &error));
	assert_string_equal(error, "component 2 of the name is empty (the hierarchy delimiter '.' "
	                           "appears at the start, at the end or twice in a row)");
	free(error);
	assert_false(gw_folder_split("", '/', &parts, &n, &error));
	assert_string_equal(error, "the folder name is empty");
	free(error);
	assert_null(parts);
	assert_int_equal(n, 0);
}

static void test_no_rules_keeps_everything(void **state)
{
	(void)state;
	struct gw_folder_rules rules = {0};
	assert_maps_to(&rules, "INBOX", '/', GW_ROLE_INBOX, "INBOX");
	assert_maps_to(&rules, "Work/Projects/2024", '/', GW_ROLE_NONE, "Work | Projects | 2024");
	assert_maps_to(&rules, "Work.Projects", '.', GW_ROLE_NONE, "Work | Projects");
	/* A '/' inside a component of a '.'-delimited server stays in the component. */
	assert_maps_to(&rules, "Rechnungen 1/2.Q&A", '.', GW_ROLE_NONE, "Rechnungen 1/2 | Q&A");
	assert_maps_to(&rules, "Entwürfe", '/', GW_ROLE_DRAFTS, "Entwürfe");
	assert_maps_to(&rules, "flat name", 0, GW_ROLE_NONE, "flat name");
	/* IMAP's INBOX is case-insensitive: the sink always sees "INBOX". */
	assert_maps_to(&rules, "inbox", '/', GW_ROLE_INBOX, "INBOX");
	assert_maps_to(&rules, "Inbox.Sub", '.', GW_ROLE_NONE, "INBOX | Sub");
	assert_maps_to(&rules, "Inboxes", '.', GW_ROLE_NONE, "Inboxes");
}

static void test_include_exclude(void **state)
{
	(void)state;
	const char *include[] = {"INBOX", "Work/*", "\\Sent"};
	const char *exclude[] = {"Work/Private*", "Junk"};
	struct gw_folder_rules rules = {
	        .include = include, .include_count = 3, .exclude = exclude, .exclude_count = 2};
	assert_int_equal(disposition_of(&rules, "INBOX", '/', GW_ROLE_INBOX, true),
	                 GW_FOLDER_MIGRATE);
	assert_int_equal(disposition_of(&rules, "inbox", '/', GW_ROLE_INBOX, true),
	                 GW_FOLDER_MIGRATE);
	assert_int_equal(disposition_of(&rules, "Work", '/', GW_ROLE_NONE, true),
	                 GW_FOLDER_EXCLUDED);
	assert_int_equal(disposition_of(&rules, "Work/A", '/', GW_ROLE_NONE, true),
	                 GW_FOLDER_MIGRATE);
	/* Patterns use '/' whatever the server's delimiter. */
	assert_int_equal(disposition_of(&rules, "Work.A", '.', GW_ROLE_NONE, true),
	                 GW_FOLDER_MIGRATE);
	assert_int_equal(disposition_of(&rules, "Work/Private", '/', GW_ROLE_NONE, true),
	                 GW_FOLDER_EXCLUDED);
	assert_int_equal(disposition_of(&rules, "Work.Private.Old", '.', GW_ROLE_NONE, true),
	                 GW_FOLDER_EXCLUDED);
	/* Included by role, whatever it is called. */
	assert_int_equal(disposition_of(&rules, "Gesendete Objekte", '/', GW_ROLE_SENT, true),
	                 GW_FOLDER_MIGRATE);
	assert_int_equal(disposition_of(&rules, "Sent", '/', GW_ROLE_NONE, true),
	                 GW_FOLDER_EXCLUDED);
	assert_int_equal(disposition_of(&rules, "Junk", '/', GW_ROLE_JUNK, true),
	                 GW_FOLDER_EXCLUDED);
}

static void test_exclude_by_role_and_containers(void **state)
{
	(void)state;
	const char *exclude[] = {"\\Trash", "\\junk"};
	struct gw_folder_rules rules = {.exclude = exclude, .exclude_count = 2};
	assert_int_equal(disposition_of(&rules, "Papierkorb", '/', GW_ROLE_TRASH, true),
	                 GW_FOLDER_EXCLUDED);
	assert_int_equal(disposition_of(&rules, "Spam", '/', GW_ROLE_JUNK, true),
	                 GW_FOLDER_EXCLUDED);
	assert_int_equal(disposition_of(&rules, "Trash", '/', GW_ROLE_NONE, true),
	                 GW_FOLDER_MIGRATE);
	/* A \Noselect container is skipped but its children are not. */
	assert_int_equal(disposition_of(&rules, "Projects", '/', GW_ROLE_NONE, false),
	                 GW_FOLDER_CONTAINER);
	assert_int_equal(disposition_of(&rules, "Projects/Alpha", '/', GW_ROLE_NONE, true),
	                 GW_FOLDER_MIGRATE);
}

static void test_map_rules(void **state)
{
	(void)state;
	struct gw_folder_map_rule map[] = {
	        {.from = "Archives/*", .to = "Archive/*"},
	        {.from = "\\Sent", .to = "Sent Items"},
	        {.from = "Old*", .to = "Legacy/Old*"},
	        {.from = "Lists/*/Digest", .to = "Digests/*"},
	        {.from = "Flat", .to = "Deep/er/*"},
	};
	struct gw_folder_rules rules = {.map = map, .map_count = 5};
	assert_maps_to(&rules, "Archives/2019", '/', GW_ROLE_NONE, "Archive | 2019");
	assert_maps_to(&rules, "Archives.2019.Q1", '.', GW_ROLE_NONE, "Archive | 2019 | Q1");
	assert_maps_to(&rules, "Archives", '/', GW_ROLE_NONE, "Archives");
	assert_maps_to(&rules, "Gesendet", '/', GW_ROLE_SENT, "Sent Items");
	assert_maps_to(&rules, "Old Stuff", '/', GW_ROLE_NONE, "Legacy | Old Stuff");
	assert_maps_to(&rules, "Lists/python-dev/Digest", '/', GW_ROLE_NONE,
	               "Digests | python-dev");
	/* No star in the pattern: the target's '*' is literal. */
	assert_maps_to(&rules, "Flat", '/', GW_ROLE_NONE, "Deep | er | *");
	/* The first matching rule wins: a \Sent folder under Archives goes to Archive. */
	assert_maps_to(&rules, "Archives/Sent", '/', GW_ROLE_SENT, "Archive | Sent");
}

static void test_illegal_names(void **state)
{
	(void)state;
	struct gw_folder_rules none = {0};
	struct gw_folder_info info = folder("A//B", '/', GW_ROLE_NONE, true);
	struct gw_mapped_folder m;
	gw_folder_map(&none, &info, &m);
	assert_int_equal(m.disposition, GW_FOLDER_ILLEGAL);
	assert_string_equal(m.error,
	                    "cannot migrate folder \"A//B\" (mapped to \"A//B\"): component "
	                    "2 of the name is empty (the hierarchy delimiter '/' appears at "
	                    "the start, at the end or twice in a row)");
	assert_int_equal(m.component_count, 0);
	gw_mapped_folder_free(&m);

	info = folder("Bad\xff", '/', GW_ROLE_NONE, true);
	gw_folder_map(&none, &info, &m);
	assert_int_equal(m.disposition, GW_FOLDER_ILLEGAL);
	assert_string_equal(m.error, "cannot migrate a folder whose name is not valid UTF-8");
	gw_mapped_folder_free(&m);

	/* A map rule whose capture is empty yields an empty component. */
	struct gw_folder_map_rule map[] = {{.from = "X*", .to = "Y/*"}};
	struct gw_folder_rules rules = {.map = map, .map_count = 1};
	info = folder("X", '/', GW_ROLE_NONE, true);
	gw_folder_map(&rules, &info, &m);
	assert_int_equal(m.disposition, GW_FOLDER_ILLEGAL);
	assert_string_equal(m.error,
	                    "cannot migrate folder \"X\" (mapped to \"Y/\"): component 2 of "
	                    "the name is empty (the hierarchy delimiter '/' appears at the "
	                    "start, at the end or twice in a row)");
	gw_mapped_folder_free(&m);

	/* Excluded folders are not judged: an illegal name that is excluded is just excluded. */
	const char *exclude[] = {"A//*"};
	struct gw_folder_rules ex = {.exclude = exclude, .exclude_count = 1};
	assert_int_equal(disposition_of(&ex, "A//B", '/', GW_ROLE_NONE, true), GW_FOLDER_EXCLUDED);
}

static void test_collisions(void **state)
{
	(void)state;
	const char *ids[] = {".Sent", ".Archive", NULL, ".Sent", ".Archive.2019", ".Sent"};
	struct gw_folder_collision *c = NULL;
	size_t n = gw_folder_collisions(ids, 6, &c);
	assert_int_equal(n, 2);
	assert_int_equal(c[0].first, 0);
	assert_int_equal(c[0].second, 3);
	assert_int_equal(c[1].first, 0);
	assert_int_equal(c[1].second, 5);
	free(c);
	const char *unique[] = {"a", "b", NULL, NULL};
	assert_int_equal(gw_folder_collisions(unique, 4, &c), 0);
	assert_null(c);
}

static void test_map_collision_is_visible_in_paths(void **state)
{
	(void)state;
	/* Two source folders mapped onto one path: the core sees equal paths (and the
	 * sink then equal ids), which gw_folder_collisions reports. */
	struct gw_folder_map_rule map[] = {{.from = "Sent Messages", .to = "Sent"}};
	struct gw_folder_rules rules = {.map = map, .map_count = 1};
	assert_maps_to(&rules, "Sent Messages", '/', GW_ROLE_NONE, "Sent");
	assert_maps_to(&rules, "Sent", '/', GW_ROLE_SENT, "Sent");
}

static void test_role_names(void **state)
{
	(void)state;
	assert_null(gw_folder_role_name(GW_ROLE_NONE));
	assert_string_equal(gw_folder_role_name(GW_ROLE_SENT), "\\Sent");
	assert_string_equal(gw_folder_role_name(GW_ROLE_IMPORTANT), "\\Important");
	assert_null(gw_folder_role_name((enum gw_folder_role)99));
	char *d = gw_folder_display_name("inbox.a/b.c", '.');
	assert_string_equal(d, "INBOX/a/b/c");
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pattern_match),
	        cmocka_unit_test(test_split),
	        cmocka_unit_test(test_no_rules_keeps_everything),
	        cmocka_unit_test(test_include_exclude),
	        cmocka_unit_test(test_exclude_by_role_and_containers),
	        cmocka_unit_test(test_map_rules),
	        cmocka_unit_test(test_illegal_names),
	        cmocka_unit_test(test_collisions),
	        cmocka_unit_test(test_map_collision_is_visible_in_paths),
	        cmocka_unit_test(test_role_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
