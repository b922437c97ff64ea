/* The state store (state.h) on SQLite.
 *
 * Settings, and why:
 * - WAL: readers never block the writer, and several worker threads (each with
 *   its own handle) write short transactions into one file.
 * - synchronous=NORMAL: in WAL mode a commit is then safe against the process
 *   being killed at any point (SIGKILL included), because committed pages are in
 *   the WAL file in the kernel's cache; only a power loss or kernel crash may
 *   roll back the last commits. That is acceptable for "done" marks: the sink
 *   fsyncs the message data itself, and a lost "done" mark leaves the row
 *   pending, which the sink's lookup resolves without copying again. "Pending"
 *   marks are the exception: they must be on disk before the sink writes
 *   anything durable, or a power loss could leave a message in the sink that no
 *   row points to. gw_state_mark_pending therefore commits with
 *   synchronous=FULL (one WAL fsync per batch). A new file is created without
 *   SQLite's fsyncs and made durable with one of its own (state_configure).
 * - A batch's pending marks are a row per folder ("flights", below), not a
 *   row per message: a message then costs one row write, its done mark.
 * - busy_timeout 10 s: handles of other workers hold the write lock for a
 *   moment; waiting is right, failing is not. Write transactions start with
 *   BEGIN IMMEDIATE so they wait for the lock up front instead of failing
 *   when a read transaction tries to become a write transaction.
 * - No checkpoint at close: a run's last commits stay in the WAL, which the
 *   next open reads and SQLite folds into the file when it reaches 1,000
 *   pages. A checkpoint at every close cost a run four fsyncs (the WAL and the
 *   file at close, a new WAL and its directory at the next open), most of a
 *   no-change re-run's time on a busy disk (bench/PROFILE.md, twenty-second
 *   pass). Nothing durable is lost: done marks are synchronous=NORMAL anyway
 *   (above). The state is therefore the file and its -wal: copy both.
 * - foreign keys on: messages cannot outlive their folder row.
 * - cache_size 512 KiB per handle (SQLite's default is 2 MB): the file stays
 *   in the kernel's page cache anyway, and a bigger cache only made a
 *   worker's memory grow with the mailbox until it was full (+2 MiB from
 *   5,000 to 20,000 messages); no slower on 20,000 messages. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "flight_pack.h"
#include "sql_uids.h"
#include "util.h"

#define STATE_BUSY_TIMEOUT_MS 10000

/* Migration n (1-based) brings the schema from version n-1 to n. Never edit a
 * released step: add a new one. */
static const char *const state_migrations[GW_STATE_SCHEMA_VERSION] = {
        /* 1: initial schema */
        "CREATE TABLE folders ("
        "  id INTEGER PRIMARY KEY,"
        "  pipeline TEXT NOT NULL,"
        "  mailbox TEXT NOT NULL,"
        "  folder TEXT NOT NULL,"
        "  uidvalidity INTEGER NOT NULL DEFAULT 0,"
        "  UNIQUE (pipeline, mailbox, folder));"
        "CREATE TABLE messages ("
        "  folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,"
        "  uidvalidity INTEGER NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  status TEXT NOT NULL CHECK (status IN ('pending', 'done')),"
        "  origin_key TEXT,"
        "  sink_folder TEXT,"
        "  sink_id TEXT,"
        "  size INTEGER NOT NULL,"
        "  sha256 TEXT,"
        "  message_id TEXT,"
        "  internal_date INTEGER NOT NULL,"
        "  seq INTEGER UNIQUE,"
        "  CHECK (status = 'pending' OR"
        "         (sink_folder IS NOT NULL AND sink_id IS NOT NULL AND seq IS NOT NULL)),"
        "  PRIMARY KEY (folder_id, uidvalidity, uid)) WITHOUT ROWID;"
        "CREATE INDEX messages_pending ON messages (folder_id) WHERE status = 'pending';"
        "CREATE INDEX messages_by_message_id ON messages (folder_id, message_id, size);"
        /* seq only grows, even if rows are ever deleted, so it is a counter of its own. */
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO counters VALUES ('done_seq', 0);"
        "CREATE TABLE runs ("
        "  id INTEGER PRIMARY KEY,"
        "  started INTEGER NOT NULL,"
        "  finished INTEGER,"
        "  status TEXT NOT NULL);"
        /* For people reading the file with the sqlite3 shell. */
        "CREATE VIEW messages_by_name AS"
        "  SELECT f.pipeline, f.mailbox, f.folder, m.* FROM messages m"
        "  JOIN folders f ON f.id = m.folder_id;",
        /* 2: pending marks of a batch as one row per folder (see "flights") */
        "CREATE TABLE flights ("
        "  id INTEGER PRIMARY KEY,"
        "  folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,"
        "  count INTEGER NOT NULL,"
        "  records BLOB NOT NULL);"
        "CREATE INDEX flights_by_folder ON flights (folder_id);",
};

enum stmt_id {
	SQL_BEGIN,
	SQL_COMMIT,
	SQL_ROLLBACK,
	SQL_SYNC_FULL,
	SQL_SYNC_NORMAL,
	SQL_FOLDER_FIND,
	SQL_FOLDER_INSERT,
	SQL_FOLDER_UIDVALIDITY,
	SQL_FOLDER_SET_UIDVALIDITY,
	SQL_DONE_UIDS,
	SQL_MARK_PENDING,
	SQL_PENDING,
	SQL_SEQ_GET,
	SQL_SEQ_SET,
	SQL_MARK_DONE,
	SQL_DROP_PENDING,
	SQL_FIND_MOVED,
	SQL_DONE_SINK_IDS,
	SQL_STATUS_AT,
	SQL_DELETE_AT,
	SQL_REKEY,
	SQL_COUNT_DONE,
	SQL_EACH_DONE,
	SQL_RUN_BEGIN,
	SQL_RUN_END,
	SQL_FLIGHT_INSERT,
	SQL_FLIGHTS_OF,
	SQL_FLIGHT_UPDATE,
	SQL_FLIGHT_DELETE,
	SQL_FOLDER_HAS_FLIGHTS,
	SQL__COUNT
};

#define FOLDER_OF_KEY                                                                              \
	"(SELECT id FROM folders WHERE pipeline = ?1 AND mailbox = ?2 AND folder = ?3)"

static const char *const stmt_sql[SQL__COUNT] = {
        [SQL_BEGIN] = "BEGIN IMMEDIATE",
        [SQL_COMMIT] = "COMMIT",
        [SQL_ROLLBACK] = "ROLLBACK",
        [SQL_SYNC_FULL] = "PRAGMA synchronous = FULL",
        [SQL_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
        [SQL_FOLDER_FIND] = "SELECT id FROM folders WHERE pipeline = ?1 AND mailbox = ?2 AND "
                            "folder = ?3",
        [SQL_FOLDER_INSERT] = "INSERT INTO folders (pipeline, mailbox, folder) VALUES (?1, ?2, ?3)",
        [SQL_FOLDER_UIDVALIDITY] = "SELECT uidvalidity FROM folders WHERE pipeline = ?1 AND "
                                   "mailbox = ?2 AND folder = ?3",
        [SQL_FOLDER_SET_UIDVALIDITY] =
                "INSERT INTO folders (pipeline, mailbox, folder, uidvalidity) "
                "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (pipeline, mailbox, folder) "
                "DO UPDATE SET uidvalidity = excluded.uidvalidity",
        [SQL_DONE_UIDS] = "SELECT uid FROM messages WHERE folder_id = " FOLDER_OF_KEY
                          " AND uidvalidity = ?4 AND status = 'done' ORDER BY uid",
        [SQL_MARK_PENDING] =
                "INSERT INTO messages (folder_id, uidvalidity, uid, status, origin_key, size, "
                "message_id, internal_date) VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7) "
                "ON CONFLICT (folder_id, uidvalidity, uid) DO UPDATE SET "
                "origin_key = excluded.origin_key, size = excluded.size, "
                "message_id = excluded.message_id, internal_date = excluded.internal_date "
                "WHERE status = 'pending'",
        [SQL_PENDING] = "SELECT uidvalidity, uid, origin_key, size, message_id, internal_date "
                        "FROM messages WHERE folder_id = " FOLDER_OF_KEY
                        " AND status = 'pending' ORDER BY uidvalidity, uid",
        [SQL_SEQ_GET] = "SELECT value FROM counters WHERE name = 'done_seq'",
        [SQL_SEQ_SET] = "UPDATE counters SET value = ?1 WHERE name = 'done_seq'",
        /* A record that is done already keeps its seq: it arrived back then. */
        [SQL_MARK_DONE] =
                "INSERT INTO messages (folder_id, uidvalidity, uid, status, origin_key, "
                "sink_folder, sink_id, size, sha256, message_id, internal_date, seq) "
                "VALUES (?1, ?2, ?3, 'done', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                "ON CONFLICT (folder_id, uidvalidity, uid) DO UPDATE SET status = 'done', "
                "origin_key = coalesce(excluded.origin_key, origin_key), "
                "sink_folder = excluded.sink_folder, sink_id = excluded.sink_id, "
                "size = excluded.size, sha256 = excluded.sha256, "
                "message_id = coalesce(excluded.message_id, message_id), "
                "internal_date = excluded.internal_date, "
                "seq = CASE WHEN status = 'done' THEN seq ELSE excluded.seq END",
        [SQL_DROP_PENDING] = "DELETE FROM messages WHERE folder_id = ?1 AND uidvalidity = ?2 "
                             "AND uid = ?3 AND status = 'pending'",
        [SQL_FIND_MOVED] =
                "SELECT uidvalidity, uid, internal_date, origin_key, sink_folder, sink_id "
                "FROM messages WHERE folder_id = " FOLDER_OF_KEY
                " AND status = 'done' AND uidvalidity <> ?4 AND message_id IS ?5 AND size = ?6 "
                "AND (?7 IS NULL OR sha256 = ?7) ORDER BY seq LIMIT 1",
        [SQL_DONE_SINK_IDS] =
                "SELECT sink_folder, sink_id FROM messages WHERE folder_id = " FOLDER_OF_KEY
                " AND message_id IS ?4 AND size = ?5 AND "
                "status = 'done'",
        [SQL_STATUS_AT] = "SELECT status FROM messages WHERE folder_id = ?1 AND "
                          "uidvalidity = ?2 AND uid = ?3",
        [SQL_DELETE_AT] = "DELETE FROM messages WHERE folder_id = ?1 AND uidvalidity = ?2 AND "
                          "uid = ?3",
        [SQL_REKEY] = "UPDATE messages SET uidvalidity = ?4, uid = ?5 WHERE folder_id = ?1 AND "
                      "uidvalidity = ?2 AND uid = ?3 AND status = 'done'",
        [SQL_COUNT_DONE] = "SELECT count(*) FROM messages m JOIN folders f ON f.id = m.folder_id "
                           "WHERE f.pipeline = ?1 AND f.mailbox = ?2 AND m.status = 'done'",
        [SQL_EACH_DONE] = "SELECT f.folder, m.uidvalidity, m.uid, m.origin_key, m.sink_folder, "
                          "m.sink_id, m.size, m.sha256, m.message_id, m.internal_date, m.seq "
                          "FROM messages m JOIN folders f ON f.id = m.folder_id "
                          "WHERE f.pipeline = ?1 AND f.mailbox = ?2 AND m.status = 'done' "
                          "ORDER BY m.seq",
        [SQL_RUN_BEGIN] = "INSERT INTO runs (started, status) VALUES (CAST(strftime('%s', 'now') "
                          "AS INTEGER), 'running')",
        [SQL_RUN_END] = "UPDATE runs SET finished = CAST(strftime('%s', 'now') AS INTEGER), status "
                        "= ?2 WHERE id = ?1",
        [SQL_FLIGHT_INSERT] = "INSERT INTO flights (folder_id, count, records) VALUES (?1, ?2, ?3)",
        [SQL_FLIGHTS_OF] = "SELECT id, records FROM flights WHERE folder_id = ?1",
        [SQL_FLIGHT_UPDATE] = "UPDATE flights SET count = ?2, records = ?3 WHERE id = ?1",
        [SQL_FLIGHT_DELETE] = "DELETE FROM flights WHERE id = ?1",
        [SQL_FOLDER_HAS_FLIGHTS] =
                "SELECT 1 FROM flights WHERE folder_id = " FOLDER_OF_KEY " LIMIT 1",
};

struct gw_state {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[SQL__COUNT]; /* prepared on first use, kept for the handle's life */
	/* Inside gw_state_group_begin/commit: the functions below write into the
	 * one open transaction instead of each committing its own. */
	bool grouped;
	bool group_full_sync; /* the group commits with synchronous=FULL */
	bool group_failed;    /* a write failed: the group was rolled back */
};

static bool state_fail(struct gw_state *st, char **error, const char *fmt, ...) GW_PRINTF(3, 4);

static bool state_fail(struct gw_state *st, char **error, const char *fmt, ...)
{
	if (error) {
		va_list ap;
		va_start(ap, fmt);
		char *what = gw_xvasprintf(fmt, ap);
		va_end(ap);
		*error = gw_xasprintf("state %s: %s", st->path, what);
		free(what);
	}
	return false;
}

static bool state_db_fail(struct gw_state *st, char **error, const char *what)
{
	return state_fail(st, error, "%s: %s", what, sqlite3_errmsg(st->db));
}

/* The cached statement, reset and unbound, ready for binding. */
static sqlite3_stmt *stmt_get(struct gw_state *st, enum stmt_id id, char **error)
{
	sqlite3_stmt *stmt = st->stmt[id];
	if (stmt) {
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
		return stmt;
	}
	if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
	    SQLITE_OK) {
		state_db_fail(st, error, "preparing a statement");
		return NULL;
	}
	st->stmt[id] = stmt;
	return stmt;
}

/* Run a statement that returns no rows; it is reset afterwards. */
static bool stmt_run(struct gw_state *st, sqlite3_stmt *stmt, const char *what, char **error)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return state_db_fail(st, error, what);
	return true;
}

static bool run_simple(struct gw_state *st, enum stmt_id id, const char *what, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, id, error);
	return stmt && stmt_run(st, stmt, what, error);
}

static void bind_key(sqlite3_stmt *stmt, const struct gw_state_folder_key *key)
{
	sqlite3_bind_text(stmt, 1, key->pipeline, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key->mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, key->folder, -1, SQLITE_STATIC);
}

static const char *column_text(sqlite3_stmt *stmt, int col)
{
	return (const char *)sqlite3_column_text(stmt, col);
}

/* ---- transactions -------------------------------------------------------- */

static bool tx_begin(struct gw_state *st, char **error)
{
	if (st->grouped)
		return !st->group_failed ||
		       state_fail(st, error, "an earlier write of this group failed");
	return run_simple(st, SQL_BEGIN, "starting a transaction", error);
}

static bool tx_commit(struct gw_state *st, char **error)
{
	if (st->grouped)
		return true;
	return run_simple(st, SQL_COMMIT, "committing", error);
}

/* Abandon the transaction (the whole group) after an error already described in *error. */
static bool tx_abort(struct gw_state *st)
{
	if (st->grouped)
		st->group_failed = true;
	if (!sqlite3_get_autocommit(st->db))
		run_simple(st, SQL_ROLLBACK, "rolling back", NULL);
	return false;
}

bool gw_state_group_begin(struct gw_state *st, bool full_sync, char **error)
{
	if (st->grouped)
		return state_fail(st, error, "a group of writes is already open");
	if (full_sync && !run_simple(st, SQL_SYNC_FULL, "raising synchronous", error))
		return false;
	if (!run_simple(st, SQL_BEGIN, "starting a transaction", error)) {
		if (full_sync)
			run_simple(st, SQL_SYNC_NORMAL, "restoring synchronous", NULL);
		return false;
	}
	st->grouped = true;
	st->group_full_sync = full_sync;
	st->group_failed = false;
	return true;
}

bool gw_state_group_commit(struct gw_state *st, char **error)
{
	if (!st->grouped)
		return state_fail(st, error, "no group of writes is open");
	bool failed = st->group_failed;
	st->grouped = false;
	st->group_failed = false;
	bool ok = !failed && (run_simple(st, SQL_COMMIT, "committing", error) || tx_abort(st));
	if (failed) {
		tx_abort(st);
		state_fail(st, error, "an earlier write of this group failed; nothing was written");
	}
	if (st->group_full_sync &&
	    !run_simple(st, SQL_SYNC_NORMAL, "restoring synchronous", ok ? error : NULL))
		ok = false;
	st->group_full_sync = false;
	return ok;
}

/* ---- open, schema -------------------------------------------------------- */

static bool exec_sql(struct gw_state *st, const char *sql, const char *what, char **error)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return state_db_fail(st, error, what);
	return true;
}

static bool schema_version_read(struct gw_state *st, int *version, char **error)
{
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v2(st->db, "SELECT version FROM schema_version", -1, &stmt, NULL) !=
	    SQLITE_OK)
		return state_db_fail(st, error, "reading the schema version");
	int rc = sqlite3_step(stmt);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return state_db_fail(st, error, "reading the schema version");
	return true;
}

static bool schema_apply_migrations(struct gw_state *st, int from, char **error)
{
	for (int v = from; v < GW_STATE_SCHEMA_VERSION; v++) {
		char *what = gw_xasprintf("migrating the schema to version %d", v + 1);
		bool ok = exec_sql(st, state_migrations[v], what, error);
		free(what);
		if (!ok)
			return false;
	}
	char *sql = gw_xasprintf("DELETE FROM schema_version; INSERT INTO schema_version "
	                         "VALUES (%d);",
	                         GW_STATE_SCHEMA_VERSION);
	bool ok = exec_sql(st, sql, "recording the schema version", error);
	free(sql);
	return ok;
}

/* One transaction, so two processes opening a new file migrate it once. */
static bool schema_migrate(struct gw_state *st, char **error)
{
	int version = 0;

	if (!exec_sql(st, "BEGIN IMMEDIATE", "starting the schema check", error))
		return false;
	if (!exec_sql(st, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
	              "creating the schema version table", error) ||
	    !schema_version_read(st, &version, error))
		return tx_abort(st);
	if (version > GW_STATE_SCHEMA_VERSION) {
		state_fail(st, error,
		           "schema version %d is newer than this godwit understands (%d); "
		           "use a newer godwit",
		           version, GW_STATE_SCHEMA_VERSION);
		return tx_abort(st);
	}
	if (version < GW_STATE_SCHEMA_VERSION && !schema_apply_migrations(st, version, error))
		return tx_abort(st);
	return exec_sql(st, "COMMIT", "committing the schema", error) || tx_abort(st);
}

/* Whether the file is in WAL mode already (a new, empty file is not). */
static bool journal_is_wal(struct gw_state *st, bool *wal, char **error)
{
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode", -1, &stmt, NULL) != SQLITE_OK)
		return state_db_fail(st, error, "switching to WAL");
	int rc = sqlite3_step(stmt);
	const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
	*wal = mode != NULL && strcmp(mode, "wal") == 0;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW)
		return state_db_fail(st, error, "switching to WAL");
	return true;
}

/* fsync a file or directory by path; errno is kept on failure. */
static bool sync_path(const char *path, int flags)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return false;
	bool ok = fsync(fd) == 0;
	int saved = errno;
	close(fd);
	errno = saved;
	return ok;
}

/* Make a new file's first page (which says "WAL") durable, and its name. */
static bool sync_new_file(struct gw_state *st, char **error)
{
	if (!sync_path(st->path, 0))
		return state_fail(st, error, "cannot make the new file durable: %s",
		                  strerror(errno));
	/* The name: best effort, as SQLite's own directory syncs (some file systems cannot). */
	char *dir = gw_path_dir(st->path);
	sync_path(dir, O_DIRECTORY);
	free(dir);
	return true;
}

/* A new file is switched to WAL and given its schema with synchronous=OFF,
 * then made durable with one fsync of its own: SQLite's way took six fsyncs
 * before the first connection of every fresh run (60-150 ms on a busy disk;
 * bench/PROFILE.md, seventeenth pass). Nothing of value is in the file yet: a
 * power loss may lose the schema from the WAL (the next open writes it again),
 * but the first page, whose "WAL" mark keeps SQLite from discarding the WAL
 * that later holds the pending marks (fsynced at their commit), is on disk
 * before open returns. An existing file is opened and migrated as it always
 * was, with synchronous=NORMAL (a checkpoint during a long migration must not
 * skip its fsyncs). */
static bool state_configure(struct gw_state *st, char **error)
{
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STATE_BUSY_TIMEOUT_MS);
	bool was_wal = false;
	if (!journal_is_wal(st, &was_wal, error) ||
	    !exec_sql(st, was_wal ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = OFF",
	              "setting pragmas", error) ||
	    !exec_sql(st, "PRAGMA journal_mode = WAL", "switching to WAL", error) ||
	    !schema_migrate(st, error))
		return false;
	if (!was_wal && !sync_new_file(st, error))
		return false;
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	return exec_sql(st,
	                "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
	                "PRAGMA cache_size = -512",
	                "setting pragmas", error);
}

bool gw_state_open(const char *path, struct gw_state **out, char **error)
{
	struct gw_state *st = gw_xcalloc(1, sizeof(*st));
	st->path = gw_xstrdup(path);
	*out = NULL;

	int rc = sqlite3_open_v2(path, &st->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                         NULL);
	if (rc != SQLITE_OK) {
		if (st->db)
			state_db_fail(st, error, "cannot open");
		else
			state_fail(st, error, "cannot open: out of memory");
		gw_state_close(st);
		return false;
	}
	if (!state_configure(st, error)) {
		gw_state_close(st);
		return false;
	}
	*out = st;
	return true;
}

void gw_state_close(struct gw_state *st)
{
	if (!st)
		return;
	for (int i = 0; i < SQL__COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

/* ---- folders ------------------------------------------------------------- */

/* Id of the folder row, created if missing. Call inside a write transaction. */
static bool folder_id_create(struct gw_state *st, const struct gw_state_folder_key *key,
                             int64_t *id, char **error)
{
	sqlite3_stmt *find = stmt_get(st, SQL_FOLDER_FIND, error);
	if (!find)
		return false;
	bind_key(find, key);
	int rc = sqlite3_step(find);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(find, 0);
		sqlite3_reset(find);
		return true;
	}
	sqlite3_reset(find);
	if (rc != SQLITE_DONE)
		return state_db_fail(st, error, "looking up a folder");

	sqlite3_stmt *insert = stmt_get(st, SQL_FOLDER_INSERT, error);
	if (!insert)
		return false;
	bind_key(insert, key);
	if (!stmt_run(st, insert, "adding a folder", error))
		return false;
	*id = sqlite3_last_insert_rowid(st->db);
	return true;
}

bool gw_state_folder_uidvalidity(struct gw_state *st, const struct gw_state_folder_key *key,
                                 uint32_t *uidvalidity, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_FOLDER_UIDVALIDITY, error);
	if (!stmt)
		return false;
	bind_key(stmt, key);
	int rc = sqlite3_step(stmt);
	*uidvalidity = rc == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(stmt, 0) : 0;
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return state_db_fail(st, error, "reading a folder's UIDVALIDITY");
	return true;
}

bool gw_state_set_folder_uidvalidity(struct gw_state *st, const struct gw_state_folder_key *key,
                                     uint32_t uidvalidity, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_FOLDER_SET_UIDVALIDITY, error);
	if (!stmt)
		return false;
	bind_key(stmt, key);
	sqlite3_bind_int64(stmt, 4, uidvalidity);
	return stmt_run(st, stmt, "recording a folder's UIDVALIDITY", error);
}

/* ---- messages ------------------------------------------------------------ */

bool gw_state_done_uids(struct gw_state *st, const struct gw_state_folder_key *key,
                        uint32_t uidvalidity, uint32_t **uids, size_t *count, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_DONE_UIDS, error);
	*uids = NULL;
	*count = 0;
	if (!stmt)
		return false;
	bind_key(stmt, key);
	sqlite3_bind_int64(stmt, 4, uidvalidity);
	return gw_sql_collect_uids(stmt, uids, count) == SQLITE_DONE ||
	       state_db_fail(st, error, "listing migrated UIDs");
}

static bool insert_pending(struct gw_state *st, int64_t folder_id, const struct gw_state_record *r,
                           char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_MARK_PENDING, error);
	if (!stmt)
		return false;
	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, r->uidvalidity);
	sqlite3_bind_int64(stmt, 3, r->uid);
	sqlite3_bind_text(stmt, 4, r->origin_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, (sqlite3_int64)r->size);
	sqlite3_bind_text(stmt, 6, r->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 7, r->internal_date);
	return stmt_run(st, stmt, "marking a message pending", error);
}

/* ---- flights ---------------------------------------------------------------
 *
 * The pending marks of a batch are written as one row per folder in `flights`,
 * its records packed into a blob (flight_pack.h), instead of a `messages` row
 * per message: a message then costs one row write (its done mark, an insert)
 * where a pending row and its update to done cost two, with the upkeep of
 * three indexes. The state's writes for 20,000 messages in batches of 2,048
 * took 141 instead of 227 ms of CPU, on a core the migration keeps busy
 * (bench/PROFILE.md, twenty-first pass). Done marks and dropped pending marks
 * take their records out of the folder's flights, and a flight left with none
 * goes, in the same transaction. What a run leaves there (it stopped, or the
 * sink could not say whether it kept a message) becomes ordinary pending rows
 * the next time the folder's pending records are asked for (expand_flights):
 * everything that settles them works on rows. The `count` column is for
 * people reading the file; the code goes by the records. */

struct flight_row {
	int64_t id;
	unsigned char *records;
	size_t len;
};

static void flight_rows_free(struct flight_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].records);
	free(rows);
}

/* The folder's flights, copied out: the caller changes the table next. */
static bool flights_of(struct gw_state *st, int64_t folder_id, struct flight_row **out,
                       size_t *count, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_FLIGHTS_OF, error);
	if (!stmt)
		return false;
	sqlite3_bind_int64(stmt, 1, folder_id);
	struct flight_row *rows = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		rows = gw_xrealloc(rows, (n + 1) * sizeof(*rows));
		struct flight_row *f = &rows[n++];
		f->id = sqlite3_column_int64(stmt, 0);
		f->len = (size_t)sqlite3_column_bytes(stmt, 1);
		f->records = gw_xmalloc(f->len);
		if (f->len > 0)
			memcpy(f->records, sqlite3_column_blob(stmt, 1), f->len);
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		flight_rows_free(rows, n);
		return state_db_fail(st, error, "reading the messages in flight");
	}
	*out = rows;
	*count = n;
	return true;
}

static bool flight_damaged(struct gw_state *st, const struct flight_row *f, char **error)
{
	return state_fail(st, error, "the records in flight of row %lld are damaged",
	                  (long long)f->id);
}

/* A flight's records, one by one: false at the end or on damage (*damaged). */
static bool flight_next(const struct flight_row *f, size_t *at, struct gw_state_record *r,
                        bool *damaged)
{
	if (*at == f->len)
		return false;
	if (gw_flight_unpack(f->records, f->len, at, r))
		return true;
	*damaged = true;
	return false;
}

static bool flight_delete(struct gw_state *st, int64_t id, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_FLIGHT_DELETE, error);
	if (!stmt)
		return false;
	sqlite3_bind_int64(stmt, 1, id);
	return stmt_run(st, stmt, "removing messages in flight", error);
}

static uint64_t flight_key(uint32_t uidvalidity, uint32_t uid)
{
	return (uint64_t)uidvalidity << 32 | uid;
}

static int cmp_key(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* Take the messages @p keys (flight_keys; sorted here) out of the folder's
 * flights. */
static bool flights_take(struct gw_state *st, int64_t folder_id, uint64_t *keys, size_t n,
                         char **error)
{
	struct flight_row *rows = NULL;
	size_t count = 0;
	if (!flights_of(st, folder_id, &rows, &count, error))
		return false;
	qsort(keys, n, sizeof(*keys), cmp_key);
	bool ok = true;
	struct gw_buf kept = {0};
	for (size_t i = 0; ok && i < count; i++) {
		struct flight_row *f = &rows[i];
		struct gw_state_record r;
		size_t at = 0, total = 0, left = 0;
		bool damaged = false;
		gw_buf_reset(&kept);
		while (flight_next(f, &at, &r, &damaged)) {
			total++;
			uint64_t key = flight_key(r.uidvalidity, r.uid);
			if (bsearch(&key, keys, n, sizeof(*keys), cmp_key) == NULL) {
				gw_flight_pack(&kept, &r);
				left++;
			}
		}
		if (damaged) {
			ok = flight_damaged(st, f, error);
		} else if (left == 0) {
			ok = flight_delete(st, f->id, error);
		} else if (left < total) {
			sqlite3_stmt *stmt = stmt_get(st, SQL_FLIGHT_UPDATE, error);
			ok = stmt != NULL;
			if (ok) {
				sqlite3_bind_int64(stmt, 1, f->id);
				sqlite3_bind_int64(stmt, 2, (sqlite3_int64)left);
				sqlite3_bind_blob(stmt, 3, kept.data, (int)kept.len, SQLITE_STATIC);
				ok = stmt_run(st, stmt, "updating messages in flight", error);
			}
		}
	}
	gw_buf_free(&kept);
	flight_rows_free(rows, count);
	return ok;
}

/* The folder's flights become pending rows (a done row stays done). Inside a
 * write transaction. */
static bool expand_flights(struct gw_state *st, int64_t folder_id, char **error)
{
	struct flight_row *rows = NULL;
	size_t count = 0;
	if (!flights_of(st, folder_id, &rows, &count, error))
		return false;
	bool ok = true;
	for (size_t i = 0; ok && i < count; i++) {
		struct gw_state_record r;
		size_t at = 0;
		bool damaged = false;
		while (ok && flight_next(&rows[i], &at, &r, &damaged))
			ok = insert_pending(st, folder_id, &r, error);
		if (ok && damaged)
			ok = flight_damaged(st, &rows[i], error);
		if (ok)
			ok = flight_delete(st, rows[i].id, error);
	}
	flight_rows_free(rows, count);
	return ok;
}

/* Does the folder have flights? A read: most folders have none. */
static bool has_flights(struct gw_state *st, const struct gw_state_folder_key *key, bool *found,
                        char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_FOLDER_HAS_FLIGHTS, error);
	if (!stmt)
		return false;
	bind_key(stmt, key);
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	*found = rc == SQLITE_ROW;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ||
	       state_db_fail(st, error, "looking for messages in flight");
}

/* Expand the folder's flights, in a transaction of their own if need be. */
static bool expand_folder_flights(struct gw_state *st, const struct gw_state_folder_key *key,
                                  char **error)
{
	bool found = false;
	if (!has_flights(st, key, &found, error))
		return false;
	if (!found)
		return true;
	int64_t folder_id;
	if (!tx_begin(st, error))
		return false;
	if (!folder_id_create(st, key, &folder_id, error) || !expand_flights(st, folder_id, error))
		return tx_abort(st);
	return tx_commit(st, error) || tx_abort(st);
}

static bool flight_insert(struct gw_state *st, const struct gw_state_folder_key *key,
                          const struct gw_buf *packed, size_t count, char **error)
{
	int64_t folder_id;
	if (!tx_begin(st, error))
		return false;
	sqlite3_stmt *stmt = folder_id_create(st, key, &folder_id, error)
	                             ? stmt_get(st, SQL_FLIGHT_INSERT, error)
	                             : NULL;
	if (!stmt)
		return tx_abort(st);
	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)count);
	sqlite3_bind_blob(stmt, 3, packed->data, (int)packed->len, SQLITE_STATIC);
	if (!stmt_run(st, stmt, "marking messages pending", error))
		return tx_abort(st);
	return tx_commit(st, error) || tx_abort(st);
}

static bool pending_batch(struct gw_state *st, const struct gw_state_folder_key *key,
                          const struct gw_state_record *records, size_t count, char **error)
{
	if (count == 0)
		return true;
	struct gw_buf packed = {0};
	for (size_t i = 0; i < count; i++)
		gw_flight_pack(&packed, &records[i]);
	bool ok = flight_insert(st, key, &packed, count, error);
	gw_buf_free(&packed);
	return ok;
}

/* The commit fsyncs the WAL (synchronous=FULL, which SQLite lets a connection
 * change only between transactions); see the top of the file for why. */
bool gw_state_mark_pending(struct gw_state *st, const struct gw_state_folder_key *key,
                           const struct gw_state_record *records, size_t count, char **error)
{
	if (st->grouped) {
		if (!st->group_full_sync)
			return state_fail(st, error, "pending marks need a group with full sync");
		return pending_batch(st, key, records, count, error);
	}
	if (!run_simple(st, SQL_SYNC_FULL, "raising synchronous", error))
		return false;
	bool ok = pending_batch(st, key, records, count, error);
	bool restored = run_simple(st, SQL_SYNC_NORMAL, "restoring synchronous", ok ? error : NULL);
	return ok && restored;
}

/* Pending rows, copied out so the callback may use the handle (drop, mark done). */
struct pending_copy {
	struct gw_state_record rec;
	char *origin_key;
	char *message_id;
};

static void pending_copies_free(struct pending_copy *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].origin_key);
		free(list[i].message_id);
	}
	free(list);
}

static char *dup_or_null(const char *s)
{
	return s ? gw_xstrdup(s) : NULL;
}

static bool pending_collect(struct gw_state *st, const struct gw_state_folder_key *key,
                            struct pending_copy **out, size_t *count, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_PENDING, error);
	struct pending_copy *list = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (!stmt)
		return false;
	bind_key(stmt, key);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			list = gw_xrealloc(list, cap * sizeof(*list));
		}
		struct pending_copy *p = &list[n++];
		memset(p, 0, sizeof(*p));
		p->rec.uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 0);
		p->rec.uid = (uint32_t)sqlite3_column_int64(stmt, 1);
		p->origin_key = dup_or_null(column_text(stmt, 2));
		p->rec.size = (uint64_t)sqlite3_column_int64(stmt, 3);
		p->message_id = dup_or_null(column_text(stmt, 4));
		p->rec.internal_date = sqlite3_column_int64(stmt, 5);
		p->rec.origin_key = p->origin_key;
		p->rec.message_id = p->message_id;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		pending_copies_free(list, n);
		return state_db_fail(st, error, "listing pending messages");
	}
	*out = list;
	*count = n;
	return true;
}

bool gw_state_pending(struct gw_state *st, const struct gw_state_folder_key *key,
                      void (*cb)(const struct gw_state_record *r, void *arg), void *arg,
                      char **error)
{
	struct pending_copy *list = NULL;
	size_t n = 0;

	if (!expand_folder_flights(st, key, error) || !pending_collect(st, key, &list, &n, error))
		return false;
	for (size_t i = 0; i < n; i++)
		cb(&list[i].rec, arg);
	pending_copies_free(list, n);
	return true;
}

static bool seq_read(struct gw_state *st, int64_t *seq, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_SEQ_GET, error);
	if (!stmt)
		return false;
	int rc = sqlite3_step(stmt);
	*seq = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? state_fail(st, error, "the seq counter is missing")
		                         : state_db_fail(st, error, "reading the seq counter");
	return true;
}

static bool seq_write(struct gw_state *st, int64_t seq, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_SEQ_SET, error);
	if (!stmt)
		return false;
	sqlite3_bind_int64(stmt, 1, seq);
	return stmt_run(st, stmt, "advancing the seq counter", error);
}

static bool insert_done(struct gw_state *st, int64_t folder_id, const struct gw_state_record *r,
                        int64_t seq, char **error)
{
	if (!r->sink_folder || !r->sink_id || !r->sha256_hex)
		return state_fail(st, error,
		                  "uid %u (uidvalidity %u) marked done without sink folder, sink "
		                  "id and SHA-256",
		                  r->uid, r->uidvalidity);
	sqlite3_stmt *stmt = stmt_get(st, SQL_MARK_DONE, error);
	if (!stmt)
		return false;
	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, r->uidvalidity);
	sqlite3_bind_int64(stmt, 3, r->uid);
	sqlite3_bind_text(stmt, 4, r->origin_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, r->sink_folder, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, r->sink_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 7, (sqlite3_int64)r->size);
	sqlite3_bind_text(stmt, 8, r->sha256_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 9, r->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 10, r->internal_date);
	sqlite3_bind_int64(stmt, 11, seq);
	return stmt_run(st, stmt, "marking a message done", error);
}

bool gw_state_mark_done(struct gw_state *st, const struct gw_state_folder_key *key,
                        const struct gw_state_record *records, size_t count, char **error)
{
	int64_t folder_id, seq;

	if (!tx_begin(st, error))
		return false;
	if (!folder_id_create(st, key, &folder_id, error) || !seq_read(st, &seq, error))
		return tx_abort(st);
	/* Records arrive in the order the sink got them, so seq records arrival. */
	for (size_t i = 0; i < count; i++)
		if (!insert_done(st, folder_id, &records[i], ++seq, error))
			return tx_abort(st);
	uint64_t *keys = gw_xcalloc(count, sizeof(*keys));
	for (size_t i = 0; i < count; i++)
		keys[i] = flight_key(records[i].uidvalidity, records[i].uid);
	bool taken = flights_take(st, folder_id, keys, count, error);
	free(keys);
	if (!taken || !seq_write(st, seq, error))
		return tx_abort(st);
	return tx_commit(st, error) || tx_abort(st);
}

static bool delete_pending(struct gw_state *st, int64_t folder_id, uint32_t uidvalidity,
                           uint32_t uid, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_DROP_PENDING, error);
	if (!stmt)
		return false;
	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, uidvalidity);
	sqlite3_bind_int64(stmt, 3, uid);
	return stmt_run(st, stmt, "dropping a pending message", error);
}

bool gw_state_drop_pending(struct gw_state *st, const struct gw_state_folder_key *key,
                           const uint32_t *uids, uint32_t uidvalidity, size_t count, char **error)
{
	int64_t folder_id;

	if (!tx_begin(st, error))
		return false;
	if (!folder_id_create(st, key, &folder_id, error))
		return tx_abort(st);
	for (size_t i = 0; i < count; i++)
		if (!delete_pending(st, folder_id, uidvalidity, uids[i], error))
			return tx_abort(st);
	uint64_t *keys = gw_xcalloc(count, sizeof(*keys));
	for (size_t i = 0; i < count; i++)
		keys[i] = flight_key(uidvalidity, uids[i]);
	bool taken = flights_take(st, folder_id, keys, count, error);
	free(keys);
	if (!taken)
		return tx_abort(st);
	return tx_commit(st, error) || tx_abort(st);
}

/* ---- UIDVALIDITY changes -------------------------------------------------- */

static bool copy_column(struct gw_state *st, sqlite3_stmt *stmt, int col, char *dst, size_t size,
                        const char *what, char **error)
{
	const char *s = column_text(stmt, col);
	if (!s)
		s = "";
	if (strlen(s) >= size)
		return state_fail(st, error, "stored %s is longer than %zu bytes", what, size - 1);
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

static bool moved_from_row(struct gw_state *st, sqlite3_stmt *stmt, struct gw_state_moved *out,
                           char **error)
{
	out->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 0);
	out->uid = (uint32_t)sqlite3_column_int64(stmt, 1);
	out->internal_date = sqlite3_column_int64(stmt, 2);
	return copy_column(st, stmt, 3, out->origin_key, sizeof(out->origin_key), "origin key",
	                   error) &&
	       copy_column(st, stmt, 4, out->sink_folder, sizeof(out->sink_folder), "sink folder",
	                   error) &&
	       copy_column(st, stmt, 5, out->sink_id, sizeof(out->sink_id), "sink id", error);
}

bool gw_state_find_moved(struct gw_state *st, const struct gw_state_folder_key *key,
                         uint32_t new_uidvalidity, const char *message_id, uint64_t size,
                         const char *sha256_hex, bool *found, struct gw_state_moved *out,
                         char **error)
{
	*found = false;
	memset(out, 0, sizeof(*out));
	if (!message_id && !sha256_hex)
		return true;

	sqlite3_stmt *stmt = stmt_get(st, SQL_FIND_MOVED, error);
	if (!stmt)
		return false;
	bind_key(stmt, key);
	sqlite3_bind_int64(stmt, 4, new_uidvalidity);
	sqlite3_bind_text(stmt, 5, message_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, (sqlite3_int64)size);
	sqlite3_bind_text(stmt, 7, sha256_hex, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	bool ok = true;
	if (rc == SQLITE_ROW)
		ok = *found = moved_from_row(st, stmt, out, error);
	else if (rc != SQLITE_DONE)
		ok = state_db_fail(st, error, "matching a moved message");
	sqlite3_reset(stmt);
	return ok;
}

bool gw_state_done_sink_ids(struct gw_state *st, const struct gw_state_folder_key *key,
                            const char *message_id, uint64_t size,
                            void (*cb)(const char *sink_folder, const char *sink_id, void *arg),
                            void *arg, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_DONE_SINK_IDS, error);
	if (!stmt)
		return false;
	bind_key(stmt, key);
	sqlite3_bind_text(stmt, 4, message_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, (sqlite3_int64)size);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		cb(column_text(stmt, 0), column_text(stmt, 1), arg);
	bool ok = rc == SQLITE_DONE || state_db_fail(st, error, "reading recorded sink ids");
	sqlite3_reset(stmt);
	return ok;
}

/* Status of the row at a key: 0 none, 'p' pending, 'd' done; -1 on error. */
static int status_at(struct gw_state *st, int64_t folder_id, uint32_t uidvalidity, uint32_t uid,
                     char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_STATUS_AT, error);
	if (!stmt)
		return -1;
	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, uidvalidity);
	sqlite3_bind_int64(stmt, 3, uid);
	int rc = sqlite3_step(stmt);
	int status = rc == SQLITE_ROW ? column_text(stmt, 0)[0] : 0;
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		state_db_fail(st, error, "reading a message's status");
		return -1;
	}
	return status;
}

static bool delete_at(struct gw_state *st, int64_t folder_id, uint32_t uidvalidity, uint32_t uid,
                      char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_DELETE_AT, error);
	if (!stmt)
		return false;
	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, uidvalidity);
	sqlite3_bind_int64(stmt, 3, uid);
	return stmt_run(st, stmt, "replacing a pending message", error);
}

static bool rekey_row(struct gw_state *st, int64_t folder_id, uint32_t old_uidvalidity,
                      uint32_t old_uid, uint32_t new_uidvalidity, uint32_t new_uid, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_REKEY, error);
	if (!stmt)
		return false;
	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, old_uidvalidity);
	sqlite3_bind_int64(stmt, 3, old_uid);
	sqlite3_bind_int64(stmt, 4, new_uidvalidity);
	sqlite3_bind_int64(stmt, 5, new_uid);
	if (!stmt_run(st, stmt, "re-keying a message", error))
		return false;
	if (sqlite3_changes(st->db) == 0)
		return state_fail(st, error,
		                  "no migrated message with uidvalidity %u uid %u to re-key",
		                  old_uidvalidity, old_uid);
	return true;
}

bool gw_state_rekey(struct gw_state *st, const struct gw_state_folder_key *key,
                    uint32_t old_uidvalidity, uint32_t old_uid, uint32_t new_uidvalidity,
                    uint32_t new_uid, char **error)
{
	int64_t folder_id;

	if (!tx_begin(st, error))
		return false;
	/* A pending mark at the new key may still be in flight: as a row, it is replaced. */
	if (!folder_id_create(st, key, &folder_id, error) || !expand_flights(st, folder_id, error))
		return tx_abort(st);
	int target = status_at(st, folder_id, new_uidvalidity, new_uid, error);
	if (target < 0)
		return tx_abort(st);
	if (target == 'd') {
		state_fail(st, error, "uid %u of uidvalidity %u is already migrated; not re-keying",
		           new_uid, new_uidvalidity);
		return tx_abort(st);
	}
	if (target == 'p' && !delete_at(st, folder_id, new_uidvalidity, new_uid, error))
		return tx_abort(st);
	if (!rekey_row(st, folder_id, old_uidvalidity, old_uid, new_uidvalidity, new_uid, error))
		return tx_abort(st);
	return tx_commit(st, error) || tx_abort(st);
}

/* ---- reports --------------------------------------------------------------- */

bool gw_state_count_done(struct gw_state *st, const char *pipeline, const char *mailbox,
                         uint64_t *count, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_COUNT_DONE, error);
	*count = 0;
	if (!stmt)
		return false;
	sqlite3_bind_text(stmt, 1, pipeline, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, mailbox, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*count = (uint64_t)sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW)
		return state_db_fail(st, error, "counting migrated messages");
	return true;
}

static void record_from_done_row(sqlite3_stmt *stmt, struct gw_state_record *r)
{
	r->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 1);
	r->uid = (uint32_t)sqlite3_column_int64(stmt, 2);
	r->origin_key = column_text(stmt, 3);
	r->sink_folder = column_text(stmt, 4);
	r->sink_id = column_text(stmt, 5);
	r->size = (uint64_t)sqlite3_column_int64(stmt, 6);
	r->sha256_hex = column_text(stmt, 7);
	r->message_id = column_text(stmt, 8);
	r->internal_date = sqlite3_column_int64(stmt, 9);
}

bool gw_state_each_done(struct gw_state *st, const char *pipeline, const char *mailbox,
                        void (*cb)(const char *folder, const struct gw_state_record *r,
                                   uint64_t seq, void *arg),
                        void *arg, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_EACH_DONE, error);
	int rc;

	if (!stmt)
		return false;
	sqlite3_bind_text(stmt, 1, pipeline, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, mailbox, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct gw_state_record r;
		record_from_done_row(stmt, &r);
		cb(column_text(stmt, 0), &r, (uint64_t)sqlite3_column_int64(stmt, 10), arg);
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return state_db_fail(st, error, "listing migrated messages");
	return true;
}

bool gw_state_run_begin(struct gw_state *st, int64_t *run_id, char **error)
{
	if (!run_simple(st, SQL_RUN_BEGIN, "recording the run", error))
		return false;
	*run_id = sqlite3_last_insert_rowid(st->db);
	return true;
}

bool gw_state_run_end(struct gw_state *st, int64_t run_id, const char *status, char **error)
{
	sqlite3_stmt *stmt = stmt_get(st, SQL_RUN_END, error);
	if (!stmt)
		return false;
	sqlite3_bind_int64(stmt, 1, run_id);
	sqlite3_bind_text(stmt, 2, status, -1, SQLITE_STATIC);
	if (!stmt_run(st, stmt, "recording the end of the run", error))
		return false;
	if (sqlite3_changes(st->db) == 0)
		return state_fail(st, error, "no run %lld to finish", (long long)run_id);
	return true;
}
