/* The selection (selection.h) in a private temporary SQLite database.
 *
 * Settings, and why:
 * - filename "": SQLite's private temporary database. It lives in the page
 *   cache and is written to an unlinked temporary file only once the cache
 *   is full, so a small mailbox never touches the disk.
 * - page_size 1 KiB, cache_size 256 KiB: the bound on what the selection
 *   costs in memory. Measured: no slower than 4 KiB pages and a 512 KiB cache
 *   on 20,000 messages.
 * - Two indexes holding every column, built once the scan is complete (one
 *   sort each, cheaper than keeping them up to date through every insert):
 *   newest first, which the count cap and the cursors' slicing walk, and by
 *   folder newest first, from which a cursor gives each folder's part of a
 *   slice. Nothing sorts and no table row is read while a lane copies. A sort
 *   keeps up to 250 pages (SQLite's minimum) of its rows in memory, a
 *   cursor's for as long as its lane copies, so memory grew with the mailbox
 *   until each lane held 370 KiB (bench/PROFILE.md, sixteenth pass); a
 *   walking cursor now holds 20 KiB.
 * - FULLMUTEX: the lanes of a copy walk their cursors from their own threads
 *   on this one connection (a private temporary database has no other).
 * - synchronous OFF: the file dies with the attempt; nothing needs to survive
 *   a crash. The rollback journal stays, because a failed scan rolls back.
 * - WITHOUT ROWID, keyed (folder, uid): a folder's scan arrives in UID order
 *   mostly, so inserts append to the tree, and a UID a server repeats is
 *   caught by the key. */
#include "selection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sql_uids.h"
#include "util.h"

/* The rules' SQL names states by number. */
_Static_assert(GW_SEL_TODO == 0 && GW_SEL_DONE == 1 && GW_SEL_FAILED_BEFORE == 2 &&
                       GW_SEL_TOO_LARGE == 3 && GW_SEL_FILTERED == 4 && GW_SEL_OVER_CAP == 5,
               "the SQL in this file spells these numbers");

#define ENTRY_COLUMNS "folder, uid, internal_date, size, tz, flags, state, keywords"
#define NEWEST_FIRST  "internal_date DESC, folder, uid DESC"
/* The newest-first order within one folder. */
#define IN_FOLDER "internal_date DESC, uid DESC"
/* The entries beyond the count cap. The cap counts what earlier runs migrated
 * too (done) and what failed earlier in this run: it bounds the mailbox, not
 * the run. */
#define BEYOND_CAP                                                                                 \
	"SELECT folder, uid, 0, state FROM scanned WHERE state IN (0, 1, 2) ORDER "                \
	"BY " NEWEST_FIRST " LIMIT -1 OFFSET ?1"

enum sel_stmt { SEL_INSERT, SEL_TODO_UIDS, SEL_SET_STATE, SEL__COUNT };

static const char *const sel_sql[SEL__COUNT] = {
        [SEL_INSERT] = "INSERT OR IGNORE INTO scanned (" ENTRY_COLUMNS
                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        [SEL_TODO_UIDS] = "SELECT uid FROM scanned WHERE folder = ?1 AND state = 0 ORDER BY uid",
        [SEL_SET_STATE] = "UPDATE scanned SET state = ?3 WHERE folder = ?1 AND uid = ?2",
};

/* A lane's walk, newest first, which finds where each slice ends. SQLite's
 * planner would rather look the lane's folders up by the primary key and sort
 * them: the index is named. A join, not "folder IN (SELECT ...)", whose
 * temporary table costs 100 KiB. */
#define WALK_SQL                                                                                   \
	"SELECT internal_date, folder, uid, size FROM scanned INDEXED BY scanned_newest JOIN "     \
	"lane_of USING (folder) WHERE lane = ?1 AND state = 0 ORDER BY " NEWEST_FIRST
/* Entries of folder ?1 after key (?3, ?4, ?5) in the newest-first order (?2 = 0:
 * from the start, with ?3 the largest date). The folder is fixed, so "folder >
 * key's folder" compares ?1 with ?4. "internal_date <= ?3" stands apart so that
 * SQLite starts the index range there instead of at the folder's newest. */
#define AFTER_KEY                                                                                  \
	"internal_date <= ?3 AND (?2 = 0 OR internal_date < ?3 OR ?1 > ?4 OR "                     \
	"(?1 = ?4 AND uid < ?5))"
/* A folder's part of one slice: after the slice before's last key, up to and
 * including this slice's last key (?6, ?7, ?8). */
#define SLICE_SQL                                                                                  \
	"SELECT " ENTRY_COLUMNS " FROM scanned INDEXED BY scanned_by_folder WHERE folder = ?1 "    \
	"AND state = 0 AND " AFTER_KEY " AND internal_date >= ?6 AND (internal_date > ?6 OR "      \
	"?1 < ?7 OR (?1 = ?7 AND uid >= ?8)) ORDER BY " IN_FOLDER
/* A folder's entries the cursor has not passed: after a key, to the end. */
#define AHEAD_SQL                                                                                  \
	"SELECT " ENTRY_COLUMNS " FROM scanned INDEXED BY scanned_by_folder WHERE folder = ?1 "    \
	"AND state = 0 AND " AFTER_KEY " ORDER BY " IN_FOLDER
#define LANE_FOLDERS_SQL "SELECT folder FROM lane_of WHERE lane = ?1 ORDER BY folder"

struct gw_selection {
	sqlite3 *db;
	sqlite3_stmt *stmt[SEL__COUNT];
	bool in_scan;
};

/* A position in the newest-first order. */
struct sel_key {
	int64_t date;
	uint32_t folder, uid;
};

/* The cursor walks a lane in slices: the next slice_messages entries newest
 * first (fewer if they would pass slice_bytes), then that slice folder by
 * folder, each newest first. A source switches folders once a slice instead of
 * once a batch (Dovecot opens a Maildir's index and UID list at every
 * SELECT: bench/PROFILE.md, nineteenth pass). */
struct gw_sel_cursor {
	struct gw_selection *sel;
	sqlite3_stmt *walk, *slice, *ahead;
	uint64_t slice_messages, slice_bytes;
	uint32_t *folders; /* the lane's, ascending: the order within a slice */
	size_t folder_count;
	bool *in_this_slice; /* by folder index, below folder_limit */
	uint32_t folder_limit;
	/* The walk newest first stands on the first entry of the next slice, or
	 * ended (stepping it again would start it over). */
	bool walk_on_row, walk_ended;
	bool done;      /* every slice given: peek has nothing more */
	bool has_start; /* a slice ended before this one, at start */
	struct sel_key start;
	bool in_slice; /* a slice ending at end is given folder by folder */
	struct sel_key end;
	size_t next_folder; /* the next of folders to look at in this slice */
	bool walked_any;    /* walked: the folder of this slice given last (or now) */
	uint32_t walked;
	bool in_folder;        /* the slice statement walks it */
	bool on_row;           /* ...and stands on an entry not yet passed */
	bool passed_in_folder; /* last: the last entry of it passed */
	struct sel_key last;
};

static bool sel_fail(struct gw_selection *sel, char **error, const char *what)
{
	if (error != NULL)
		*error = gw_xasprintf("selection: %s: %s", what, sqlite3_errmsg(sel->db));
	return false;
}

static bool exec_sql(struct gw_selection *sel, const char *sql, const char *what, char **error)
{
	return sqlite3_exec(sel->db, sql, NULL, NULL, NULL) == SQLITE_OK ||
	       sel_fail(sel, error, what);
}

/* A statement kept for the selection's life. */
static bool prepare(struct gw_selection *sel, const char *sql, sqlite3_stmt **stmt, char **error)
{
	return sqlite3_prepare_v3(sel->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) ==
	               SQLITE_OK ||
	       sel_fail(sel, error, "preparing a statement");
}

/* The cached statement, reset and unbound. */
static sqlite3_stmt *stmt_get(struct gw_selection *sel, enum sel_stmt id, char **error)
{
	sqlite3_stmt *stmt = sel->stmt[id];
	if (stmt != NULL) {
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
		return stmt;
	}
	if (!prepare(sel, sel_sql[id], &stmt, error))
		return NULL;
	sel->stmt[id] = stmt;
	return stmt;
}

/* A statement run once per attempt; finalized by the caller. */
static sqlite3_stmt *stmt_once(struct gw_selection *sel, const char *sql, char **error)
{
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v2(sel->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		sel_fail(sel, error, "preparing a statement");
		return NULL;
	}
	return stmt;
}

static bool step_done(struct gw_selection *sel, sqlite3_stmt *stmt, const char *what, char **error)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE || sel_fail(sel, error, what);
}

bool gw_selection_open(struct gw_selection **out, char **error)
{
	struct gw_selection *sel = gw_xcalloc(1, sizeof(*sel));
	*out = NULL;
	if (sqlite3_open_v2("", &sel->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
	                    NULL) != SQLITE_OK) {
		if (sel->db != NULL)
			sel_fail(sel, error, "cannot open a temporary database");
		else if (error != NULL)
			*error = gw_xstrdup("selection: cannot open a temporary database");
		gw_selection_close(sel);
		return false;
	}
	if (!exec_sql(sel,
	              "PRAGMA page_size = 1024; PRAGMA cache_size = -256;"
	              "PRAGMA synchronous = OFF;"
	              "CREATE TABLE scanned ("
	              "  folder INTEGER NOT NULL, uid INTEGER NOT NULL,"
	              "  internal_date INTEGER NOT NULL, size INTEGER NOT NULL,"
	              "  tz INTEGER NOT NULL, flags INTEGER NOT NULL, state INTEGER NOT NULL,"
	              "  keywords BLOB,"
	              "  PRIMARY KEY (folder, uid)) WITHOUT ROWID;"
	              "CREATE TABLE size_limits (folder INTEGER PRIMARY KEY,"
	              "  max_size INTEGER NOT NULL);"
	              "CREATE TABLE lane_of (folder INTEGER PRIMARY KEY, lane INTEGER NOT NULL);",
	              "creating the tables", error)) {
		gw_selection_close(sel);
		return false;
	}
	*out = sel;
	return true;
}

void gw_selection_close(struct gw_selection *sel)
{
	if (sel == NULL)
		return;
	for (size_t i = 0; i < SEL__COUNT; i++)
		sqlite3_finalize(sel->stmt[i]);
	sqlite3_close(sel->db);
	free(sel);
}

/* ---- the scan ---- */

bool gw_selection_scan_begin(struct gw_selection *sel, char **error)
{
	if (!exec_sql(sel, "BEGIN", "starting a folder's scan", error))
		return false;
	sel->in_scan = true;
	return true;
}

bool gw_selection_add(struct gw_selection *sel, const struct gw_sel_entry *e, bool *added,
                      char **error)
{
	sqlite3_stmt *stmt = stmt_get(sel, SEL_INSERT, error);
	if (stmt == NULL)
		return false;
	sqlite3_bind_int64(stmt, 1, e->folder);
	sqlite3_bind_int64(stmt, 2, e->uid);
	sqlite3_bind_int64(stmt, 3, e->internal_date);
	sqlite3_bind_int64(stmt, 4, (sqlite3_int64)e->size);
	sqlite3_bind_int(stmt, 5, e->tz_offset_min);
	sqlite3_bind_int(stmt, 6, e->flags);
	sqlite3_bind_int(stmt, 7, e->state);
	if (e->keyword_count > 0)
		sqlite3_bind_blob(stmt, 8, e->keywords, (int)(e->keyword_count * sizeof(uint16_t)),
		                  SQLITE_STATIC);
	if (!step_done(sel, stmt, "recording a scanned message", error))
		return false;
	*added = sqlite3_changes(sel->db) > 0;
	return true;
}

bool gw_selection_scan_end(struct gw_selection *sel, bool keep, char **error)
{
	if (!sel->in_scan)
		return true;
	sel->in_scan = false;
	if (keep)
		return exec_sql(sel, "COMMIT", "ending a folder's scan", error);
	return exec_sql(sel, "ROLLBACK", "dropping a failed scan", error);
}

/* ---- re-matching ---- */

bool gw_selection_todo_uids(struct gw_selection *sel, uint32_t folder, uint32_t **uids,
                            size_t *count, char **error)
{
	*uids = NULL;
	*count = 0;
	sqlite3_stmt *stmt = stmt_get(sel, SEL_TODO_UIDS, error);
	if (stmt == NULL)
		return false;
	sqlite3_bind_int64(stmt, 1, folder);
	return gw_sql_collect_uids(stmt, uids, count) == SQLITE_DONE ||
	       sel_fail(sel, error, "listing a folder's messages");
}

bool gw_selection_set_state(struct gw_selection *sel, uint32_t folder, uint32_t uid,
                            enum gw_sel_state state, char **error)
{
	sqlite3_stmt *stmt = stmt_get(sel, SEL_SET_STATE, error);
	if (stmt == NULL)
		return false;
	sqlite3_bind_int64(stmt, 1, folder);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_int(stmt, 3, (int)state);
	return step_done(sel, stmt, "updating a message", error);
}

/* ---- the rules ---- */

/* Report every row of @p report (folder, uid, value[, state]) through the
 * rules' callback as @p state, then run @p update. Only rows whose optional
 * fourth column is GW_SEL_TODO are reported. */
static bool report_then_update(struct gw_selection *sel, const struct gw_selection_rules *rules,
                               const char *report, const char *update, int64_t bound,
                               enum gw_sel_state state, const char *what, char **error)
{
	sqlite3_stmt *stmt = stmt_once(sel, report, error);
	if (stmt == NULL)
		return false;
	if (sqlite3_bind_parameter_count(stmt) > 0)
		sqlite3_bind_int64(stmt, 1, bound);
	bool with_state = sqlite3_column_count(stmt) > 3;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (with_state && sqlite3_column_int(stmt, 3) != GW_SEL_TODO)
			continue;
		rules->skipped(rules->arg, (uint32_t)sqlite3_column_int64(stmt, 0),
		               (uint32_t)sqlite3_column_int64(stmt, 1), state,
		               (uint64_t)sqlite3_column_int64(stmt, 2));
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return sel_fail(sel, error, what);
	if ((stmt = stmt_once(sel, update, error)) == NULL)
		return false;
	if (sqlite3_bind_parameter_count(stmt) > 0)
		sqlite3_bind_int64(stmt, 1, bound);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE || sel_fail(sel, error, what);
}

static bool load_size_limits(struct gw_selection *sel, const struct gw_selection_rules *rules,
                             bool *any, char **error)
{
	*any = false;
	sqlite3_stmt *stmt = NULL;
	if (!exec_sql(sel, "DELETE FROM size_limits", "clearing size limits", error) ||
	    (stmt = stmt_once(sel, "INSERT INTO size_limits VALUES (?1, ?2)", error)) == NULL)
		return false;
	bool ok = true;
	for (size_t i = 0; i < rules->folder_count && ok; i++) {
		uint64_t limit = rules->size_limits[i];
		if (limit == 0)
			continue;
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)i);
		sqlite3_bind_int64(stmt, 2, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
		ok = step_done(sel, stmt, "recording size limits", error);
		*any = true;
	}
	sqlite3_finalize(stmt);
	return ok;
}

bool gw_selection_apply(struct gw_selection *sel, const struct gw_selection_rules *rules,
                        uint64_t *todo, char **error)
{
	*todo = 0;
	if (!exec_sql(sel,
	              "CREATE INDEX IF NOT EXISTS scanned_newest ON scanned (" NEWEST_FIRST
	              ", state, size, tz, flags, keywords)",
	              "indexing the selection newest first", error) ||
	    !exec_sql(sel,
	              "CREATE INDEX IF NOT EXISTS scanned_by_folder ON scanned (folder, " IN_FOLDER
	              ", state, size, tz, flags, keywords)",
	              "indexing the selection by folder", error))
		return false;
	bool any_limit = false;
	if (!load_size_limits(sel, rules, &any_limit, error))
		return false;
	if (any_limit &&
	    !report_then_update(
	            sel, rules,
	            "SELECT s.folder, s.uid, s.size FROM scanned s JOIN size_limits l "
	            "ON l.folder = s.folder WHERE s.state = 0 AND s.size > l.max_size "
	            "ORDER BY s.folder, s.uid",
	            "UPDATE scanned SET state = 3 FROM size_limits l WHERE l.folder = "
	            "scanned.folder AND scanned.state = 0 AND scanned.size > l.max_size",
	            0, GW_SEL_TOO_LARGE, "applying the size limit", error))
		return false;
	if (rules->since != 0 &&
	    !report_then_update(
	            sel, rules,
	            "SELECT folder, uid, internal_date FROM scanned WHERE state = 0 "
	            "AND internal_date < ?1 ORDER BY folder, uid",
	            "UPDATE scanned SET state = 4 WHERE state = 0 AND internal_date < ?1",
	            rules->since, GW_SEL_FILTERED, "applying the date filter", error))
		return false;
	sqlite3_int64 cap =
	        rules->max_count > INT64_MAX ? INT64_MAX : (sqlite3_int64)rules->max_count;
	if (cap > 0 &&
	    !report_then_update(sel, rules, BEYOND_CAP,
	                        "UPDATE scanned SET state = 5 WHERE state = 0 AND "
	                        "(folder, uid) IN (SELECT folder, uid FROM (" BEYOND_CAP "))",
	                        cap, GW_SEL_OVER_CAP, "applying the count cap", error))
		return false;
	sqlite3_stmt *stmt = stmt_once(sel, "SELECT count(*) FROM scanned WHERE state = 0", error);
	if (stmt == NULL)
		return false;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*todo = (uint64_t)sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW || sel_fail(sel, error, "counting what is left to copy");
}

static void entry_of_row(sqlite3_stmt *stmt, struct gw_sel_entry *e)
{
	int kw_bytes = sqlite3_column_bytes(stmt, 7);
	*e = (struct gw_sel_entry){
	        .folder = (uint32_t)sqlite3_column_int64(stmt, 0),
	        .uid = (uint32_t)sqlite3_column_int64(stmt, 1),
	        .internal_date = sqlite3_column_int64(stmt, 2),
	        .size = (uint64_t)sqlite3_column_int64(stmt, 3),
	        .tz_offset_min = (int16_t)sqlite3_column_int(stmt, 4),
	        .flags = (uint8_t)sqlite3_column_int(stmt, 5),
	        .state = (uint8_t)sqlite3_column_int(stmt, 6),
	        .keyword_count = (uint8_t)(kw_bytes / (int)sizeof(uint16_t)),
	        .keywords = sqlite3_column_blob(stmt, 7),
	};
}

/* ---- lanes ---- */

struct lane_group {
	uint32_t id;
	uint64_t weight;
};

static int heavier_first(const void *x, const void *y)
{
	const struct lane_group *a = x, *b = y;
	if (a->weight != b->weight)
		return a->weight > b->weight ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* Each folder's weight (its bytes left to copy, plus one a message so that
 * empty messages count), summed into its group's. */
static bool group_weights(struct gw_selection *sel, const uint32_t *group_of, size_t folder_count,
                          uint64_t *weights, char **error)
{
	sqlite3_stmt *stmt = stmt_once(
	        sel,
	        "SELECT folder, sum(size) + count(*) FROM scanned WHERE state = 0 GROUP BY folder",
	        error);
	if (stmt == NULL)
		return false;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		uint64_t folder = (uint64_t)sqlite3_column_int64(stmt, 0);
		if (folder >= folder_count || group_of[folder] >= folder_count) {
			sqlite3_finalize(stmt);
			*error = gw_xasprintf("selection: folder %llu has no lane group",
			                      (unsigned long long)folder);
			return false;
		}
		weights[group_of[folder]] += (uint64_t)sqlite3_column_int64(stmt, 1);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE || sel_fail(sel, error, "weighing the folders");
}

static bool write_lanes(struct gw_selection *sel, const uint32_t *group_of, size_t folder_count,
                        const uint64_t *weights, const uint32_t *lane_of_group, char **error)
{
	sqlite3_stmt *stmt = NULL;
	if (!exec_sql(sel, "BEGIN; DELETE FROM lane_of", "planning the lanes", error))
		return false;
	bool ok = (stmt = stmt_once(sel, "INSERT INTO lane_of VALUES (?1, ?2)", error)) != NULL;
	for (size_t i = 0; i < folder_count && ok; i++) {
		if (weights[group_of[i]] == 0)
			continue;
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)i);
		sqlite3_bind_int64(stmt, 2, lane_of_group[group_of[i]]);
		ok = step_done(sel, stmt, "planning the lanes", error);
	}
	sqlite3_finalize(stmt);
	if (!ok) {
		sqlite3_exec(sel->db, "ROLLBACK", NULL, NULL, NULL);
		return false;
	}
	return exec_sql(sel, "COMMIT", "planning the lanes", error);
}

bool gw_selection_plan_lanes(struct gw_selection *sel, const uint32_t *group_of,
                             size_t folder_count, unsigned lanes, unsigned *used, uint32_t *lane_of,
                             char **error)
{
	*used = 0;
	uint64_t *weights = gw_xcalloc(folder_count + 1, sizeof(*weights));
	struct lane_group *groups = gw_xcalloc(folder_count + 1, sizeof(*groups));
	uint32_t *lane_of_group = gw_xcalloc(folder_count + 1, sizeof(*lane_of_group));
	uint64_t *load = gw_xcalloc(lanes > 0 ? lanes : 1, sizeof(*load));
	bool ok = group_weights(sel, group_of, folder_count, weights, error);
	size_t group_count = 0;
	for (size_t i = 0; ok && i < folder_count; i++) {
		if (weights[i] > 0)
			groups[group_count++] =
			        (struct lane_group){.id = (uint32_t)i, .weight = weights[i]};
	}
	/* Largest first, each to the lightest lane so far (ties: the lower lane). */
	qsort(groups, group_count, sizeof(*groups), heavier_first);
	for (size_t g = 0; g < group_count && lanes > 0; g++) {
		unsigned lightest = 0;
		for (unsigned l = 1; l < lanes; l++) {
			if (load[l] < load[lightest])
				lightest = l;
		}
		load[lightest] += groups[g].weight;
		lane_of_group[groups[g].id] = (uint32_t)lightest;
	}
	if (ok)
		ok = write_lanes(sel, group_of, folder_count, weights, lane_of_group, error);
	if (ok)
		*used = group_count < lanes ? (unsigned)group_count : lanes;
	for (size_t i = 0; ok && lane_of != NULL && i < folder_count; i++)
		lane_of[i] = weights[group_of[i]] > 0 ? lane_of_group[group_of[i]] : GW_SEL_NO_LANE;
	free(weights);
	free(groups);
	free(lane_of_group);
	free(load);
	return ok;
}

/* ---- the cursors ---- */

static bool load_lane_folders(struct gw_sel_cursor *cur, unsigned lane, char **error)
{
	sqlite3_stmt *stmt = stmt_once(cur->sel, LANE_FOLDERS_SQL, error);
	if (stmt == NULL)
		return false;
	sqlite3_bind_int64(stmt, 1, lane);
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (cur->folder_count == cap) {
			cap = cap ? cap * 2 : 16;
			cur->folders = gw_xrealloc(cur->folders, cap * sizeof(*cur->folders));
		}
		cur->folders[cur->folder_count++] = (uint32_t)sqlite3_column_int64(stmt, 0);
	}
	sqlite3_finalize(stmt);
	cur->folder_limit = cur->folder_count > 0 ? cur->folders[cur->folder_count - 1] + 1 : 0;
	cur->in_this_slice = gw_xcalloc(cur->folder_limit + 1, sizeof(*cur->in_this_slice));
	return rc == SQLITE_DONE || sel_fail(cur->sel, error, "listing the lane's folders");
}

bool gw_sel_cursor_open(struct gw_selection *sel, unsigned lane, uint64_t slice_messages,
                        uint64_t slice_bytes, struct gw_sel_cursor **out, char **error)
{
	struct gw_sel_cursor *cur = gw_xcalloc(1, sizeof(*cur));
	cur->sel = sel;
	cur->slice_messages = slice_messages > 0 ? slice_messages : 1;
	cur->slice_bytes = slice_bytes > 0 ? slice_bytes : 1;
	*out = NULL;
	if (!prepare(sel, WALK_SQL, &cur->walk, error) ||
	    !prepare(sel, SLICE_SQL, &cur->slice, error) ||
	    !prepare(sel, AHEAD_SQL, &cur->ahead, error) || !load_lane_folders(cur, lane, error)) {
		gw_sel_cursor_close(cur);
		return false;
	}
	sqlite3_bind_int64(cur->walk, 1, lane);
	*out = cur;
	return true;
}

void gw_sel_cursor_close(struct gw_sel_cursor *cur)
{
	if (cur == NULL)
		return;
	sqlite3_finalize(cur->walk);
	sqlite3_finalize(cur->slice);
	sqlite3_finalize(cur->ahead);
	free(cur->folders);
	free(cur->in_this_slice);
	free(cur);
}

/* Bind ?1 to ?5 of AFTER_KEY: folder @p folder's entries after @p key. */
static void bind_after(sqlite3_stmt *stmt, uint32_t folder, bool has_key, const struct sel_key *key)
{
	sqlite3_reset(stmt);
	sqlite3_bind_int64(stmt, 1, folder);
	sqlite3_bind_int(stmt, 2, has_key);
	sqlite3_bind_int64(stmt, 3, has_key ? key->date : INT64_MAX);
	sqlite3_bind_int64(stmt, 4, key->folder);
	sqlite3_bind_int64(stmt, 5, key->uid);
}

/* Walk the lane newest first to the end of the next slice: cur->end is its
 * last key. False on failure; at the end of the lane cur->in_slice is false. */
static bool next_slice(struct gw_sel_cursor *cur, char **error)
{
	uint64_t count = 0, bytes = 0;
	while (!cur->walk_ended) {
		if (!cur->walk_on_row) {
			int rc = sqlite3_step(cur->walk);
			if (rc == SQLITE_DONE) {
				cur->walk_ended = true;
				break;
			}
			if (rc != SQLITE_ROW)
				return sel_fail(cur->sel, error, "reading the selection");
			cur->walk_on_row = true;
		}
		uint64_t size = (uint64_t)sqlite3_column_int64(cur->walk, 3);
		if (count > 0 && (count == cur->slice_messages || size > cur->slice_bytes - bytes))
			break;
		cur->end = (struct sel_key){.date = sqlite3_column_int64(cur->walk, 0),
		                            .folder = (uint32_t)sqlite3_column_int64(cur->walk, 1),
		                            .uid = (uint32_t)sqlite3_column_int64(cur->walk, 2)};
		if (cur->end.folder < cur->folder_limit)
			cur->in_this_slice[cur->end.folder] = true;
		count++;
		bytes = size > cur->slice_bytes - bytes ? cur->slice_bytes : bytes + size;
		cur->walk_on_row = false;
	}
	cur->in_slice = count > 0;
	cur->next_folder = 0;
	cur->walked_any = false;
	return true;
}

bool gw_sel_cursor_peek(struct gw_sel_cursor *cur, struct gw_sel_entry *entry, char **error)
{
	while (!cur->done && !cur->on_row) {
		if (cur->in_folder) {
			int rc = sqlite3_step(cur->slice);
			if (rc == SQLITE_ROW)
				cur->on_row = true;
			else if (rc == SQLITE_DONE)
				cur->in_folder = false;
			else
				return sel_fail(cur->sel, error, "reading the selection");
		} else if (cur->in_slice && cur->next_folder < cur->folder_count) {
			uint32_t folder = cur->folders[cur->next_folder++];
			if (!cur->in_this_slice[folder])
				continue;
			cur->in_this_slice[folder] = false;
			cur->walked = folder;
			cur->walked_any = true;
			bind_after(cur->slice, folder, cur->has_start, &cur->start);
			sqlite3_bind_int64(cur->slice, 6, cur->end.date);
			sqlite3_bind_int64(cur->slice, 7, cur->end.folder);
			sqlite3_bind_int64(cur->slice, 8, cur->end.uid);
			cur->in_folder = true;
			cur->passed_in_folder = false;
		} else {
			if (cur->in_slice) {
				cur->start = cur->end;
				cur->has_start = true;
			}
			if (!next_slice(cur, error))
				return false;
			cur->done = !cur->in_slice;
		}
	}
	if (cur->done)
		return false;
	entry_of_row(cur->slice, entry);
	return true;
}

void gw_sel_cursor_advance(struct gw_sel_cursor *cur)
{
	if (!cur->on_row)
		return;
	cur->last = (struct sel_key){.date = sqlite3_column_int64(cur->slice, 2),
	                             .folder = (uint32_t)sqlite3_column_int64(cur->slice, 0),
	                             .uid = (uint32_t)sqlite3_column_int64(cur->slice, 1)};
	cur->passed_in_folder = true;
	cur->on_row = false;
}

bool gw_sel_cursor_each_ahead(struct gw_sel_cursor *cur, uint32_t folder,
                              void (*cb)(void *arg, const struct gw_sel_entry *entry), void *arg,
                              char **error)
{
	/* What the cursor passed of the folder ends at: the slice's end if the
	 * folder's turn in it is over, the last entry passed if it is the folder
	 * being walked, the slice before's end if its turn is still to come. */
	bool begun = cur->in_slice && cur->walked_any;
	const struct sel_key *passed = &cur->start;
	bool has_passed = cur->has_start;
	if (begun && folder < cur->walked) {
		passed = &cur->end;
		has_passed = true;
	} else if (begun && folder == cur->walked && cur->passed_in_folder) {
		passed = &cur->last;
		has_passed = true;
	}
	sqlite3_stmt *stmt = cur->ahead;
	bind_after(stmt, folder, has_passed, passed);
	int rc;
	struct gw_sel_entry e;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		entry_of_row(stmt, &e);
		cb(arg, &e);
	}
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE || sel_fail(cur->sel, error, "listing a folder's messages");
}
