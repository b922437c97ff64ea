/* The selection (selection.h): scans kept or rolled back, repeated UIDs,
 * keywords, the rules (size per folder, date, the count cap over the
 * newest-first order), lanes (balanced, groups kept together, walked from two
 * threads), the cursor, what is ahead of it, and that its memory does not
 * grow with the number of messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>

#include "selection.h"

static struct gw_selection *open_selection(void)
{
	struct gw_selection *sel = NULL;
	char *err = NULL;
	assert_true(gw_selection_open(&sel, &err));
	assert_null(err);
	return sel;
}

static struct gw_sel_entry entry(uint32_t folder, uint32_t uid, int64_t date, uint64_t size)
{
	return (struct gw_sel_entry){
	        .folder = folder, .uid = uid, .internal_date = date, .size = size};
}

static void add(struct gw_selection *sel, struct gw_sel_entry e)
{
	bool added = false;
	char *err = NULL;
	assert_true(gw_selection_add(sel, &e, &added, &err));
	assert_true(added);
}

static void scan(struct gw_selection *sel, const struct gw_sel_entry *entries, size_t n)
{
	char *err = NULL;
	assert_true(gw_selection_scan_begin(sel, &err));
	for (size_t i = 0; i < n; i++)
		add(sel, entries[i]);
	assert_true(gw_selection_scan_end(sel, true, &err));
}

enum { MAX_FOLDERS = 64 };

/* Each folder's lane in the last plan. */
static uint32_t lane_of[MAX_FOLDERS];

/* Plan @p lanes lanes; every folder is a group of its own unless @p joined
 * (folder, group) pairs say otherwise. Returns the lanes used. */
static unsigned plan(struct gw_selection *sel, unsigned lanes, const uint32_t (*joined)[2],
                     size_t joined_count)
{
	uint32_t group_of[MAX_FOLDERS];
	for (uint32_t i = 0; i < MAX_FOLDERS; i++)
		group_of[i] = i;
	for (size_t i = 0; i < joined_count; i++)
		group_of[joined[i][0]] = joined[i][1];
	unsigned used = 99;
	char *err = NULL;
	assert_true(
	        gw_selection_plan_lanes(sel, group_of, MAX_FOLDERS, lanes, &used, lane_of, &err));
	assert_null(err);
	return used;
}

static struct gw_sel_cursor *sliced(struct gw_selection *sel, unsigned lane, uint64_t messages,
                                    uint64_t bytes)
{
	struct gw_sel_cursor *cur = NULL;
	char *err = NULL;
	assert_true(gw_sel_cursor_open(sel, lane, messages, bytes, &cur, &err));
	assert_null(err);
	return cur;
}

/* Slices of one message: newest first over the lane, strictly. */
static struct gw_sel_cursor *cursor(struct gw_selection *sel, unsigned lane)
{
	return sliced(sel, lane, 1, UINT64_MAX);
}

/* Everything in one lane, and its cursor. */
static struct gw_sel_cursor *one_lane(struct gw_selection *sel)
{
	plan(sel, 1, NULL, 0);
	return cursor(sel, 0);
}

/* The whole cursor as "folder:uid" words; the cursor is closed. */
static char *walk(struct gw_sel_cursor *cur)
{
	static char out[1024];
	out[0] = '\0';
	struct gw_sel_entry e;
	char *err = NULL;
	while (gw_sel_cursor_peek(cur, &e, &err)) {
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%u:%u", out[0] ? " " : "",
		         e.folder, e.uid);
		gw_sel_cursor_advance(cur);
	}
	assert_null(err);
	/* The end stays the end: stepping again would start the query over. */
	assert_false(gw_sel_cursor_peek(cur, &e, &err));
	assert_null(err);
	gw_sel_cursor_close(cur);
	return out;
}

static uint64_t apply(struct gw_selection *sel, struct gw_selection_rules *rules)
{
	uint64_t todo = 0;
	char *err = NULL;
	assert_true(gw_selection_apply(sel, rules, &todo, &err));
	assert_null(err);
	return todo;
}

static void test_newest_first_ties_by_folder_then_uid_descending(void **unused)
{
	(void)unused;
	struct gw_selection *sel = open_selection();
	scan(sel,
	     (struct gw_sel_entry[]){entry(1, 5, 100, 1), entry(1, 6, 300, 1), entry(1, 7, 200, 1),
	                             entry(1, 8, 200, 1)},
	     4);
	scan(sel, (struct gw_sel_entry[]){entry(0, 2, 200, 1), entry(0, 1, 400, 1)}, 2);
	struct gw_selection_rules none = {0};
	assert_int_equal(apply(sel, &none), 6);
	assert_string_equal(walk(one_lane(sel)), "0:1 1:6 0:2 1:8 1:7 1:5");
	gw_selection_close(sel);
}

static void test_failed_scan_adds_nothing_and_repeats_are_ignored(void **unused)
{
	(void)unused;
	struct gw_selection *sel = open_selection();
	char *err = NULL;
	bool added = true;
	assert_true(gw_selection_scan_begin(sel, &err));
	add(sel, entry(0, 1, 10, 1));
	struct gw_sel_entry again = entry(0, 1, 99, 7);
	assert_true(gw_selection_add(sel, &again, &added, &err));
	assert_false(added); /* the first one stays */
	assert_true(gw_selection_scan_end(sel, true, &err));

	assert_true(gw_selection_scan_begin(sel, &err));
	add(sel, entry(1, 1, 20, 1));
	add(sel, entry(1, 2, 30, 1));
	assert_true(gw_selection_scan_end(sel, false, &err)); /* the folder's scan failed */

	struct gw_selection_rules none = {0};
	assert_int_equal(apply(sel, &none), 1);
	struct gw_sel_cursor *cur = one_lane(sel);
	struct gw_sel_entry e;
	assert_true(gw_sel_cursor_peek(cur, &e, &err));
	assert_int_equal(e.internal_date, 10);
	assert_int_equal(e.size, 1);
	gw_sel_cursor_close(cur);
	gw_selection_close(sel);
}

static void test_entry_fields_and_keywords_round_trip(void **unused)
{
	(void)unused;
	struct gw_selection *sel = open_selection();
	uint16_t kw[3] = {7, 0, 65535};
	struct gw_sel_entry in = {.folder = 3,
	                          .uid = 4000000000u,
	                          .internal_date = -86400,
	                          .size = 36700160,
	                          .tz_offset_min = -570,
	                          .flags = 0x1f,
	                          .keyword_count = 3,
	                          .keywords = kw};
	scan(sel, &in, 1);
	scan(sel, (struct gw_sel_entry[]){entry(4, 1, -90000, 1)}, 1);
	struct gw_selection_rules none = {0};
	assert_int_equal(apply(sel, &none), 2);
	struct gw_sel_entry out;
	char *err = NULL;
	struct gw_sel_cursor *cur = one_lane(sel);
	assert_true(gw_sel_cursor_peek(cur, &out, &err));
	assert_int_equal(out.folder, 3);
	assert_int_equal(out.uid, 4000000000u);
	assert_int_equal(out.internal_date, -86400);
	assert_int_equal(out.size, 36700160);
	assert_int_equal(out.tz_offset_min, -570);
	assert_int_equal(out.flags, 0x1f);
	assert_int_equal(out.state, GW_SEL_TODO);
	assert_int_equal(out.keyword_count, 3);
	assert_memory_equal(out.keywords, kw, sizeof(kw));
	/* Peeking again does not move. */
	assert_true(gw_sel_cursor_peek(cur, &out, &err));
	assert_int_equal(out.uid, 4000000000u);
	gw_sel_cursor_advance(cur);
	assert_true(gw_sel_cursor_peek(cur, &out, &err));
	assert_int_equal(out.folder, 4);
	assert_int_equal(out.keyword_count, 0);
	gw_sel_cursor_close(cur);
	gw_selection_close(sel);
}

struct skips {
	char text[1024];
};

static void on_skipped(void *arg, uint32_t folder, uint32_t uid, enum gw_sel_state state,
                       uint64_t value)
{
	struct skips *s = arg;
	static const char *const names[] = {
	        [GW_SEL_TOO_LARGE] = "large", [GW_SEL_FILTERED] = "old", [GW_SEL_OVER_CAP] = "cap"};
	snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text), "%s%s %u:%u=%llu",
	         s->text[0] ? ", " : "", names[state], folder, uid, (unsigned long long)value);
}

static void test_rules_size_per_folder_date_then_cap(void **unused)
{
	(void)unused;
	struct gw_selection *sel = open_selection();
	struct gw_sel_entry f0[] = {entry(0, 1, 1000, 50), entry(0, 2, 900, 500),
	                            entry(0, 3, 800, 10),  entry(0, 4, 100, 10),
	                            entry(0, 5, 700, 10),  entry(0, 6, 600, 10)};
	f0[2].state = GW_SEL_DONE;          /* copied by an earlier run: counts toward the cap */
	f0[4].state = GW_SEL_FAILED_BEFORE; /* counts too, is not copied */
	scan(sel, f0, 6);
	scan(sel, (struct gw_sel_entry[]){entry(1, 1, 950, 500), entry(1, 2, 650, 10)}, 2);
	uint64_t limits[2] = {100, 0}; /* folder 1 has no limit */
	struct skips skips = {{0}};
	struct gw_selection_rules rules = {.size_limits = limits,
	                                   .folder_count = 2,
	                                   .since = 500,
	                                   .max_count = 4,
	                                   .skipped = on_skipped,
	                                   .arg = &skips};
	/* Left after size and date, newest first: 0:1 (1000), 1:1 (950), 0:3 done (800),
	 * 0:5 failed (700) | 1:2 (650), 0:6 (600) beyond the cap of 4. */
	assert_int_equal(apply(sel, &rules), 2);
	assert_string_equal(skips.text, "large 0:2=500, old 0:4=100, cap 1:2=0, cap 0:6=0");
	assert_string_equal(walk(one_lane(sel)), "0:1 1:1");
	gw_selection_close(sel);
}

static void test_rematch_candidates_and_state(void **unused)
{
	(void)unused;
	struct gw_selection *sel = open_selection();
	struct gw_sel_entry f[] = {entry(2, 9, 1, 1), entry(2, 3, 2, 1), entry(2, 5, 3, 1)};
	f[2].state = GW_SEL_DONE;
	scan(sel, f, 3);
	uint32_t *uids = NULL;
	size_t n = 0;
	char *err = NULL;
	assert_true(gw_selection_todo_uids(sel, 2, &uids, &n, &err));
	assert_int_equal(n, 2);
	assert_int_equal(uids[0], 3);
	assert_int_equal(uids[1], 9);
	free(uids);
	assert_true(gw_selection_set_state(sel, 2, 9, GW_SEL_DONE, &err));
	struct gw_selection_rules none = {0};
	assert_int_equal(apply(sel, &none), 1);
	assert_string_equal(walk(one_lane(sel)), "2:3");
	gw_selection_close(sel);
}

static void collect(void *arg, const struct gw_sel_entry *e)
{
	char *out = arg;
	snprintf(out + strlen(out), 256 - strlen(out), "%s%u:%u", out[0] ? " " : "", e->folder,
	         e->uid);
}

static void test_each_ahead_lists_what_the_cursor_has_not_passed(void **unused)
{
	(void)unused;
	struct gw_selection *sel = open_selection();
	/* Same dates across folders exercise the tie rules of "ahead". */
	scan(sel,
	     (struct gw_sel_entry[]){entry(0, 1, 50, 1), entry(0, 2, 40, 1), entry(0, 3, 40, 1),
	                             entry(0, 4, 30, 1)},
	     4);
	scan(sel, (struct gw_sel_entry[]){entry(1, 1, 40, 1), entry(1, 2, 30, 1)}, 2);
	struct gw_selection_rules none = {0};
	apply(sel, &none);
	struct gw_sel_cursor *cur = one_lane(sel);
	char out[256] = "";
	char *err = NULL;
	assert_true(gw_sel_cursor_each_ahead(cur, 0, collect, out, &err));
	assert_string_equal(out, "0:1 0:3 0:2 0:4"); /* nothing passed yet: all of it */
	/* Order: 0:1 0:3 0:2 1:1 0:4 1:2. Pass 0:1 and 0:3, and stand on 0:2. */
	struct gw_sel_entry e;
	for (int i = 0; i < 2; i++) {
		assert_true(gw_sel_cursor_peek(cur, &e, &err));
		gw_sel_cursor_advance(cur);
	}
	assert_true(gw_sel_cursor_peek(cur, &e, &err));
	assert_int_equal(e.uid, 2);
	out[0] = '\0';
	assert_true(gw_sel_cursor_each_ahead(cur, 0, collect, out, &err));
	assert_string_equal(out, "0:2 0:4"); /* the entry under the cursor is not passed */
	gw_sel_cursor_advance(cur);
	assert_true(gw_sel_cursor_peek(cur, &e, &err));
	gw_sel_cursor_advance(cur); /* 1:1 passed: same date, later folder */
	out[0] = '\0';
	assert_true(gw_sel_cursor_each_ahead(cur, 0, collect, out, &err));
	assert_string_equal(out, "0:4");
	out[0] = '\0';
	assert_true(gw_sel_cursor_each_ahead(cur, 1, collect, out, &err));
	assert_string_equal(out, "1:2");
	gw_sel_cursor_close(cur);
	gw_selection_close(sel);
}

/* Three folders of messages of @p size bytes, in one lane; newest first over
 * the mailbox: 2:1 0:1 1:1 0:2 2:2 1:2 0:3 2:3. */
static struct gw_selection *three_folders(uint64_t size)
{
	struct gw_selection *sel = open_selection();
	scan(sel,
	     (struct gw_sel_entry[]){entry(0, 1, 90, size), entry(0, 2, 70, size),
	                             entry(0, 3, 40, size)},
	     3);
	scan(sel, (struct gw_sel_entry[]){entry(1, 1, 80, size), entry(1, 2, 50, size)}, 2);
	scan(sel,
	     (struct gw_sel_entry[]){entry(2, 1, 95, size), entry(2, 2, 60, size),
	                             entry(2, 3, 30, size)},
	     3);
	struct gw_selection_rules none = {0};
	assert_int_equal(apply(sel, &none), 8);
	plan(sel, 1, NULL, 0);
	return sel;
}

static void test_slices_go_folder_by_folder(void **unused)
{
	(void)unused;
	struct gw_selection *sel = three_folders(10);
	/* Three at a time: {2:1 0:1 1:1} {0:2 2:2 1:2} {0:3 2:3}, each by folder. */
	assert_string_equal(walk(sliced(sel, 0, 3, UINT64_MAX)), "0:1 1:1 2:1 0:2 1:2 2:2 0:3 2:3");
	/* A slice ends before the bytes would pass 25, or at 4 messages:
	 * {2:1 0:1} {1:1 0:2} {2:2 1:2} {0:3 2:3}. */
	assert_string_equal(walk(sliced(sel, 0, 4, 25)), "0:1 2:1 0:2 1:1 1:2 2:2 0:3 2:3");
	/* One slice for everything: folder after folder. */
	assert_string_equal(walk(sliced(sel, 0, 100, UINT64_MAX)),
	                    "0:1 0:2 0:3 1:1 1:2 2:1 2:2 2:3");
	/* A message larger than a slice's bytes is a slice of its own. */
	assert_string_equal(walk(sliced(sel, 0, 100, 5)), "2:1 0:1 1:1 0:2 2:2 1:2 0:3 2:3");
	gw_selection_close(sel);
}

/* What each_ahead lists for folders 0, 1 and 2. */
static void assert_ahead(struct gw_sel_cursor *cur, const char *const expected[3])
{
	for (uint32_t f = 0; f < 3; f++) {
		char out[256] = "";
		char *err = NULL;
		assert_true(gw_sel_cursor_each_ahead(cur, f, collect, out, &err));
		assert_string_equal(out, expected[f]);
	}
}

/* What is ahead of a cursor in slices: a folder whose turn in the slice is
 * over has passed up to the slice's end, the folder being walked up to its
 * last entry passed, a folder still to come up to the slice before's end. */
static void test_each_ahead_in_slices(void **unused)
{
	(void)unused;
	struct gw_selection *sel = three_folders(1);
	/* Slices of 5: {2:1 0:1 1:1 0:2 2:2} {1:2 0:3 2:3}; order 0:1 0:2 1:1 2:1 2:2 | 1:2 0:3
	 * 2:3. */
	struct gw_sel_cursor *cur = sliced(sel, 0, 5, UINT64_MAX);
	char *err = NULL;
	struct gw_sel_entry e;
	/* Pass 0:1 0:2 1:1 2:1, stand on 2:2. */
	for (int i = 0; i < 4; i++) {
		assert_true(gw_sel_cursor_peek(cur, &e, &err));
		gw_sel_cursor_advance(cur);
	}
	assert_true(gw_sel_cursor_peek(cur, &e, &err));
	assert_int_equal(e.folder * 100 + e.uid, 202);
	assert_ahead(cur, (const char *const[]){"0:3", "1:2", "2:2 2:3"});
	/* Into the second slice, standing on its first entry 0:3: folder 2's
	 * turn is still to come, so all of its part of the slice is ahead. */
	gw_sel_cursor_advance(cur);
	assert_true(gw_sel_cursor_peek(cur, &e, &err));
	assert_int_equal(e.folder * 100 + e.uid, 3);
	assert_ahead(cur, (const char *const[]){"0:3", "1:2", "2:3"});
	gw_sel_cursor_advance(cur);
	assert_ahead(cur, (const char *const[]){"", "1:2", "2:3"});
	/* At the end nothing is ahead anywhere. */
	while (gw_sel_cursor_peek(cur, &e, &err))
		gw_sel_cursor_advance(cur);
	assert_null(err);
	assert_ahead(cur, (const char *const[]){"", "", ""});
	gw_sel_cursor_close(cur);
	gw_selection_close(sel);
}

static void test_lanes_balance_bytes_keep_groups_and_walk_apart(void **unused)
{
	(void)unused;
	struct gw_selection *sel = open_selection();
	scan(sel,
	     (struct gw_sel_entry[]){entry(0, 1, 10, 1000), entry(0, 2, 60, 1000),
	                             entry(0, 3, 30, 1000)},
	     3);
	scan(sel, (struct gw_sel_entry[]){entry(1, 1, 50, 2500)}, 1);
	scan(sel, (struct gw_sel_entry[]){entry(2, 1, 40, 400), entry(2, 2, 20, 400)}, 2);
	scan(sel, (struct gw_sel_entry[]){entry(3, 7, 35, 300)}, 1);
	struct gw_sel_entry done = entry(4, 1, 99, 5000);
	done.state = GW_SEL_DONE; /* nothing left to copy: in no lane */
	scan(sel, &done, 1);
	struct gw_selection_rules none = {0};
	assert_int_equal(apply(sel, &none), 7);
	/* Folder 3 lands where folder 2 does. Groups by weight (bytes + messages):
	 * {0} 3003, {1} 2501, {2,3} 1103: lane 0 takes {0}, lane 1 {1} then {2,3}. */
	const uint32_t joined[][2] = {{3, 2}};
	assert_int_equal(plan(sel, 2, joined, 1), 2);
	const uint32_t expected_lanes[] = {0, 1, 1, 1, GW_SEL_NO_LANE};
	assert_memory_equal(lane_of, expected_lanes, sizeof(expected_lanes));
	struct gw_sel_cursor *lane0 = cursor(sel, 0), *lane1 = cursor(sel, 1);
	/* The two cursors move independently: alternate between them. */
	struct gw_sel_entry a, b;
	char *err = NULL;
	assert_true(gw_sel_cursor_peek(lane0, &a, &err));
	assert_true(gw_sel_cursor_peek(lane1, &b, &err));
	assert_int_equal(a.folder * 100 + a.uid, 2);   /* 0:2, date 60 */
	assert_int_equal(b.folder * 100 + b.uid, 101); /* 1:1, date 50 */
	gw_sel_cursor_advance(lane1);
	assert_string_equal(walk(lane0), "0:2 0:3 0:1");
	assert_string_equal(walk(lane1), "2:1 3:7 2:2");
	/* More lanes than groups: only as many are used. Planning again replaces the plan. */
	assert_int_equal(plan(sel, 4, joined, 1), 3);
	assert_string_equal(walk(cursor(sel, 2)), "2:1 3:7 2:2");
	assert_string_equal(walk(cursor(sel, 3)), "");
	gw_selection_close(sel);

	/* Nothing to copy: no lane at all. */
	sel = open_selection();
	scan(sel, &done, 1);
	apply(sel, &none);
	assert_int_equal(plan(sel, 2, NULL, 0), 0);
	gw_selection_close(sel);
}

/* Checks a walk in slices of exactly @p per_slice entries (their bytes well
 * under the bound): nothing newer than anything of an earlier slice, and each
 * slice folder by folder, each folder newest first. */
struct slice_check {
	uint64_t per_slice, n;
	int64_t slice_min, earlier_min, last_date;
	uint32_t last_folder;
	bool ok;
};

static struct slice_check slice_check(uint64_t per_slice)
{
	return (struct slice_check){.per_slice = per_slice,
	                            .slice_min = INT64_MAX,
	                            .earlier_min = INT64_MAX,
	                            .ok = true};
}

static void check_slices(struct slice_check *c, const struct gw_sel_entry *e)
{
	if (c->n % c->per_slice == 0) {
		/* The oldest of the slice before is the oldest of all before: it was checked. */
		c->earlier_min = c->slice_min;
		c->slice_min = INT64_MAX;
		c->last_folder = 0;
		c->last_date = INT64_MAX;
	}
	bool same_folder = e->folder == c->last_folder;
	c->ok &= e->internal_date <= c->earlier_min && e->folder >= c->last_folder &&
	         (!same_folder || e->internal_date <= c->last_date);
	if (e->internal_date < c->slice_min)
		c->slice_min = e->internal_date;
	c->last_folder = e->folder;
	c->last_date = e->internal_date;
	c->n++;
}

struct lane_walk {
	struct gw_sel_cursor *cur;
	uint32_t odd_folders; /* lane 1 has the odd folders */
	struct slice_check order;
	bool own_folders;
};

static void *walk_lane(void *arg)
{
	struct lane_walk *w = arg;
	struct gw_sel_entry e;
	char *err = NULL;
	w->own_folders = true;
	while (gw_sel_cursor_peek(w->cur, &e, &err)) {
		check_slices(&w->order, &e);
		w->own_folders &= e.folder % 2 == w->odd_folders;
		gw_sel_cursor_advance(w->cur);
	}
	w->order.ok &= err == NULL;
	return NULL;
}

/* Two lanes walked at the same time from two threads on the one connection. */
static void test_two_threads_walk_their_lanes(void **unused)
{
	(void)unused;
	enum { FOLDERS = 8, PER_FOLDER = 5000 };
	struct gw_selection *sel = open_selection();
	char *err = NULL;
	for (uint32_t f = 0; f < FOLDERS; f++) {
		assert_true(gw_selection_scan_begin(sel, &err));
		for (uint32_t uid = 1; uid <= PER_FOLDER; uid++)
			add(sel, entry(f, uid, (int64_t)((uid * 2654435761u) % 1000000u), 100));
		assert_true(gw_selection_scan_end(sel, true, &err));
	}
	struct gw_selection_rules none = {0};
	apply(sel, &none);
	/* Even folders into group 0, odd ones into group 1: equal weights, one lane each. */
	uint32_t joined[FOLDERS][2];
	for (uint32_t f = 0; f < FOLDERS; f++) {
		joined[f][0] = f;
		joined[f][1] = f % 2;
	}
	assert_int_equal(plan(sel, 2, (const uint32_t(*)[2])joined, FOLDERS), 2);
	enum { SLICE = 1000 };
	struct lane_walk w[2] = {
	        {.cur = sliced(sel, 0, SLICE, UINT64_MAX), .order = slice_check(SLICE)},
	        {.cur = sliced(sel, 1, SLICE, UINT64_MAX), .order = slice_check(SLICE)}};
	struct gw_sel_entry first;
	assert_true(gw_sel_cursor_peek(w[1].cur, &first, &err));
	w[1].odd_folders = first.folder % 2;
	w[0].odd_folders = !w[1].odd_folders;
	pthread_t threads[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, walk_lane, &w[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(threads[i], NULL);
		assert_true(w[i].order.ok);
		assert_true(w[i].own_folders);
		assert_int_equal(w[i].order.n, FOLDERS / 2 * PER_FOLDER);
		gw_sel_cursor_close(w[i].cur);
	}
	gw_selection_close(sel);
}

/* The point of the module: 300,000 messages, scanned, selected and walked,
 * within what SQLite is allowed to keep (page cache and the sort that builds
 * the newest-first index, 0.6 MiB measured), not 40 bytes a message (12 MB)
 * as an array would; and a walking cursor holds no sort of its own. */
static void test_memory_does_not_grow_with_the_mailbox(void **unused)
{
	(void)unused;
	enum { MESSAGES = 300000, FOLDERS = 30 };
	struct gw_selection *sel = open_selection();
	sqlite3_int64 base = sqlite3_memory_used();
	sqlite3_memory_highwater(1);
	char *err = NULL;
	uint16_t kw[2] = {1, 2};
	for (uint32_t f = 0; f < FOLDERS; f++) {
		assert_true(gw_selection_scan_begin(sel, &err));
		for (uint32_t uid = 1; uid <= MESSAGES / FOLDERS; uid++) {
			struct gw_sel_entry e =
			        entry(f, uid, (int64_t)((uid * 2654435761u) % 400000000u), 20000);
			e.keyword_count = uid % 3 == 0 ? 2 : 0;
			e.keywords = kw;
			add(sel, e);
		}
		assert_true(gw_selection_scan_end(sel, true, &err));
	}
	struct gw_selection_rules none = {0};
	assert_int_equal(apply(sel, &none), MESSAGES);
	sqlite3_int64 before_walk = sqlite3_memory_used();
	plan(sel, 1, NULL, 0);
	enum { SLICE = 8192 };
	struct gw_sel_cursor *cur = sliced(sel, 0, SLICE, UINT64_MAX);
	struct gw_sel_entry e;
	assert_true(gw_sel_cursor_peek(cur, &e, &err));
	/* What a lane holds while it copies: the statements, no sort of the mailbox. */
	sqlite3_int64 walking = sqlite3_memory_used() - before_walk;
	printf("an open cursor holds %.1f KiB\n", (double)walking / 1024);
	assert_true(walking < 64 * 1024);
	struct slice_check order = slice_check(SLICE);
	while (gw_sel_cursor_peek(cur, &e, &err)) {
		check_slices(&order, &e);
		gw_sel_cursor_advance(cur);
	}
	assert_null(err);
	gw_sel_cursor_close(cur);
	assert_true(order.ok);
	assert_int_equal(order.n, MESSAGES);
	sqlite3_int64 peak = sqlite3_memory_highwater(0) - base;
	printf("selection of %d messages: SQLite peak %.1f MiB above the empty selection\n",
	       MESSAGES, (double)peak / (1 << 20));
	assert_true(peak < 1 << 20);
	gw_selection_close(sel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_newest_first_ties_by_folder_then_uid_descending),
	        cmocka_unit_test(test_failed_scan_adds_nothing_and_repeats_are_ignored),
	        cmocka_unit_test(test_entry_fields_and_keywords_round_trip),
	        cmocka_unit_test(test_rules_size_per_folder_date_then_cap),
	        cmocka_unit_test(test_rematch_candidates_and_state),
	        cmocka_unit_test(test_each_ahead_lists_what_the_cursor_has_not_passed),
	        cmocka_unit_test(test_slices_go_folder_by_folder),
	        cmocka_unit_test(test_each_ahead_in_slices),
	        cmocka_unit_test(test_lanes_balance_bytes_keep_groups_and_walk_apart),
	        cmocka_unit_test(test_two_threads_walk_their_lanes),
	        cmocka_unit_test(test_memory_does_not_grow_with_the_mailbox),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
