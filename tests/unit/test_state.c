/* The SQLite state store: pending -> done, done UIDs, arrival order (seq),
 * UIDVALIDITY re-matching, concurrent handles, schema versioning. */
#include <pthread.h>
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
#include <sqlite3.h>

#include "state.h"

static char dir[] = "/tmp/gw-test-state-XXXXXX";
static char path[512];

static int setup(void **state)
{
	static int n;
	if (n++ == 0)
		assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state-%d.db", dir, n);
	return 0;
}

static int teardown(void **state)
{
	char *files[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char p[600];
		snprintf(p, sizeof(p), "%s%s", path, files[i]);
		unlink(p);
	}
	return 0;
}

static int remove_dir(void **state)
{
	rmdir(dir);
	return 0;
}

static struct gw_state *open_ok(void)
{
	struct gw_state *st = NULL;
	char *err = NULL;
	if (!gw_state_open(path, &st, &err))
		fail_msg("open: %s", err);
	return st;
}

static const struct gw_state_folder_key inbox = {"p1", "alice@example.org", "INBOX"};
static const struct gw_state_folder_key sent = {"p1", "alice@example.org", "Sent"};

static struct gw_state_record pending_rec(uint32_t uidvalidity, uint32_t uid, int64_t date)
{
	static char keys[64][16];
	static int next;
	char *key = keys[next++ % 64];
	snprintf(key, 16, "k%u", uid);
	return (struct gw_state_record){.uidvalidity = uidvalidity,
	                                .uid = uid,
	                                .origin_key = key,
	                                .size = 1000 + uid,
	                                .message_id = NULL,
	                                .internal_date = date};
}

static struct gw_state_record done_rec(uint32_t uidvalidity, uint32_t uid, const char *msgid,
                                       uint64_t size, const char *sha)
{
	return (struct gw_state_record){.uidvalidity = uidvalidity,
	                                .uid = uid,
	                                .origin_key = "okey",
	                                .sink_folder = ".Folder",
	                                .sink_id = "sinkid",
	                                .size = size,
	                                .sha256_hex = sha,
	                                .message_id = msgid,
	                                .internal_date = 1000000 + uid};
}

static void expect_done_uids(struct gw_state *st, const struct gw_state_folder_key *key,
                             uint32_t uidvalidity, const uint32_t *want, size_t want_count)
{
	uint32_t *uids = NULL;
	size_t n = 99;
	char *err = NULL;
	assert_true(gw_state_done_uids(st, key, uidvalidity, &uids, &n, &err));
	assert_int_equal(n, want_count);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(uids[i], want[i]);
	free(uids);
}

struct collected {
	uint32_t uids[64];
	char keys[64][16];
	size_t n;
};

static void collect_pending(const struct gw_state_record *r, void *arg)
{
	struct collected *c = arg;
	assert_null(r->sink_id);
	c->uids[c->n] = r->uid;
	snprintf(c->keys[c->n], 16, "%s", r->origin_key ? r->origin_key : "-");
	c->n++;
}

static uint64_t count_done(struct gw_state *st)
{
	uint64_t n = 0;
	char *err = NULL;
	assert_true(gw_state_count_done(st, "p1", "alice@example.org", &n, &err));
	return n;
}

static void test_schema_and_reopen(void **state)
{
	struct gw_state *st = open_ok();
	char *err = NULL;
	assert_true(gw_state_set_folder_uidvalidity(st, &inbox, 77, &err));
	gw_state_close(st);

	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &q, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), GW_STATE_SCHEMA_VERSION);
	assert_int_equal(sqlite3_step(q), SQLITE_DONE); /* exactly one row */
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);

	/* Reopening keeps the data and does not migrate twice. */
	st = open_ok();
	uint32_t v = 0;
	assert_true(gw_state_folder_uidvalidity(st, &inbox, &v, &err));
	assert_int_equal(v, 77);
	gw_state_close(st);
}

/* A file whose schema never reached the disk (only its WAL mark did: a power
 * loss right after a first open) gets the schema again on the next open. */
static void test_schema_lost_is_written_again(void **state)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);

	struct gw_state *st = open_ok();
	char *err = NULL;
	assert_true(gw_state_set_folder_uidvalidity(st, &inbox, 5, &err));
	uint32_t v = 0;
	assert_true(gw_state_folder_uidvalidity(st, &inbox, &v, &err));
	assert_int_equal(v, 5);
	gw_state_close(st);
}

static void test_newer_schema_refused(void **state)
{
	gw_state_close(open_ok());
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	        sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL),
	        SQLITE_OK);
	sqlite3_close(db);

	struct gw_state *st = (struct gw_state *)1;
	char *err = NULL;
	assert_false(gw_state_open(path, &st, &err));
	assert_null(st);
	char want[700];
	snprintf(want, sizeof(want),
	         "state %s: schema version 99 is newer than this godwit understands (%d); use a "
	         "newer godwit",
	         path, GW_STATE_SCHEMA_VERSION);
	assert_string_equal(err, want);
	free(err);
}

static void test_not_a_database(void **state)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not SQLite, just text long enough to be a header........\n", f);
	fclose(f);
	struct gw_state *st = NULL;
	char *err = NULL;
	assert_false(gw_state_open(path, &st, &err));
	char want[700];
	snprintf(want, sizeof(want), "state %s: switching to WAL: file is not a database", path);
	assert_string_equal(err, want);
	free(err);
}

static void test_folder_uidvalidity(void **state)
{
	struct gw_state *st = open_ok();
	uint32_t v = 99;
	char *err = NULL;
	assert_true(gw_state_folder_uidvalidity(st, &inbox, &v, &err));
	assert_int_equal(v, 0);
	assert_true(gw_state_set_folder_uidvalidity(st, &inbox, 4000000000u, &err));
	assert_true(gw_state_set_folder_uidvalidity(st, &sent, 5, &err));
	assert_true(gw_state_folder_uidvalidity(st, &inbox, &v, &err));
	assert_int_equal(v, 4000000000u);
	assert_true(gw_state_set_folder_uidvalidity(st, &sent, 6, &err));
	assert_true(gw_state_folder_uidvalidity(st, &sent, &v, &err));
	assert_int_equal(v, 6);
	gw_state_close(st);
}

static void test_pending_to_done(void **state)
{
	struct gw_state *st = open_ok();
	char *err = NULL;
	struct gw_state_record p[3] = {pending_rec(7, 30, 300), pending_rec(7, 10, 100),
	                               pending_rec(7, 20, 200)};
	assert_true(gw_state_mark_pending(st, &inbox, p, 3, &err));

	struct collected c = {0};
	assert_true(gw_state_pending(st, &inbox, collect_pending, &c, &err));
	assert_int_equal(c.n, 3);
	assert_int_equal(c.uids[0], 10); /* ascending uid */
	assert_int_equal(c.uids[1], 20);
	assert_int_equal(c.uids[2], 30);
	assert_string_equal(c.keys[0], "k10");
	expect_done_uids(st, &inbox, 7, NULL, 0);
	assert_int_equal(count_done(st), 0);

	struct gw_state_record d[2] = {done_rec(7, 30, "<a@x>", 1030, "aa"),
	                               done_rec(7, 10, NULL, 1010, "bb")};
	assert_true(gw_state_mark_done(st, &inbox, d, 2, &err));
	c.n = 0;
	assert_true(gw_state_pending(st, &inbox, collect_pending, &c, &err));
	assert_int_equal(c.n, 1);
	assert_int_equal(c.uids[0], 20);
	expect_done_uids(st, &inbox, 7, (uint32_t[]){10, 30}, 2);
	expect_done_uids(st, &inbox, 8, NULL, 0); /* other uidvalidity */
	expect_done_uids(st, &sent, 7, NULL, 0);  /* other folder */
	assert_int_equal(count_done(st), 2);

	/* Marking a done record pending again does not undo it. */
	assert_true(gw_state_mark_pending(st, &inbox, p, 1, &err));
	expect_done_uids(st, &inbox, 7, (uint32_t[]){10, 30}, 2);

	/* Drop the one that never reached the sink; done ones are not dropped. */
	assert_true(gw_state_drop_pending(st, &inbox, (uint32_t[]){20, 30}, 7, 2, &err));
	c.n = 0;
	assert_true(gw_state_pending(st, &inbox, collect_pending, &c, &err));
	assert_int_equal(c.n, 0);
	assert_int_equal(count_done(st), 2);

	/* Done without a sink id is refused and the whole batch rolled back. */
	struct gw_state_record bad[2] = {done_rec(7, 40, NULL, 1, "cc"),
	                                 done_rec(7, 41, NULL, 1, "dd")};
	bad[1].sink_id = NULL;
	assert_false(gw_state_mark_done(st, &inbox, bad, 2, &err));
	char want[700];
	snprintf(want, sizeof(want),
	         "state %s: uid 41 (uidvalidity 7) marked done without sink folder, sink id and "
	         "SHA-256",
	         path);
	assert_string_equal(err, want);
	free(err);
	assert_int_equal(count_done(st), 2);
	gw_state_close(st);
}

/* Rows of the state file by SQL, through a connection of the test's own. */
static int64_t sql_count(const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

/* A run's batches: pending marks in flight (a row per folder, no message rows),
 * taken out by the done marks and drops that settle them, in the same group;
 * what is left is listed as pending, with every field, once asked for. */
static void test_pending_in_flight(void **state)
{
	struct gw_state *st = open_ok();
	char *err = NULL;
	struct gw_state_record p[4] = {pending_rec(7, 10, 100), pending_rec(7, 20, 200),
	                               pending_rec(7, 30, 300), pending_rec(7, 40, 400)};
	p[1].message_id = "<m20@x>";
	struct gw_state_record q[2] = {pending_rec(7, 5, 50), pending_rec(7, 6, 60)};
	assert_true(gw_state_group_begin(st, true, &err));
	assert_true(gw_state_mark_pending(st, &inbox, p, 4, &err));
	assert_true(gw_state_mark_pending(st, &sent, q, 2, &err));
	assert_true(gw_state_group_commit(st, &err));
	assert_int_equal(sql_count("SELECT count(*) FROM messages"), 0);
	assert_int_equal(sql_count("SELECT sum(count) FROM flights"), 6);

	/* The batch settles: two done, one dropped, one left (the sink could not say). */
	struct gw_state_record d[2] = {done_rec(7, 30, "<a@x>", 1030, "aa"),
	                               done_rec(7, 10, NULL, 1010, "bb")};
	assert_true(gw_state_group_begin(st, false, &err));
	assert_true(gw_state_mark_done(st, &inbox, d, 2, &err));
	assert_true(gw_state_drop_pending(st, &inbox, (uint32_t[]){40}, 7, 1, &err));
	assert_true(gw_state_drop_pending(st, &sent, (uint32_t[]){5, 6}, 7, 2, &err));
	assert_true(gw_state_group_commit(st, &err));
	assert_int_equal(sql_count("SELECT count(*) FROM flights"), 1);
	assert_int_equal(sql_count("SELECT count FROM flights"), 1);
	expect_done_uids(st, &inbox, 7, (uint32_t[]){10, 30}, 2);
	gw_state_close(st);

	/* The next run asks: the one left is an ordinary pending row now. */
	st = open_ok();
	struct collected c = {0};
	assert_true(gw_state_pending(st, &sent, collect_pending, &c, &err));
	assert_int_equal(c.n, 0);
	assert_true(gw_state_pending(st, &inbox, collect_pending, &c, &err));
	assert_int_equal(c.n, 1);
	assert_int_equal(c.uids[0], 20);
	assert_string_equal(c.keys[0], "k20");
	assert_int_equal(sql_count("SELECT count(*) FROM flights"), 0);
	assert_int_equal(sql_count("SELECT count(*) FROM messages WHERE uid = 20 AND status = "
	                           "'pending' AND size = 1020 AND internal_date = 200 AND "
	                           "message_id = '<m20@x>'"),
	                 1);
	/* A done message marked pending again stays done, in flight or not. */
	assert_true(gw_state_mark_pending(st, &inbox, d, 1, &err));
	c.n = 0;
	assert_true(gw_state_pending(st, &inbox, collect_pending, &c, &err));
	assert_int_equal(c.n, 1);
	expect_done_uids(st, &inbox, 7, (uint32_t[]){10, 30}, 2);
	gw_state_close(st);
}

/* Damaged records in flight are an error that names them, not a silent loss. */
static void test_damaged_flight_refused(void **state)
{
	struct gw_state *st = open_ok();
	char *err = NULL;
	struct gw_state_record p = pending_rec(7, 10, 100);
	assert_true(gw_state_mark_pending(st, &inbox, &p, 1, &err));
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE flights SET records = substr(records, 1, 30)",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	struct collected c = {0};
	assert_false(gw_state_pending(st, &inbox, collect_pending, &c, &err));
	char want[600];
	snprintf(want, sizeof(want), "state %s: the records in flight of row 1 are damaged", path);
	assert_string_equal(err, want);
	free(err);
	gw_state_close(st);
}

/* A file of schema version 1 (pending rows in messages) is migrated on open,
 * and its pending rows are listed as before. */
static void test_schema_1_migrated(void **state)
{
	struct gw_state *st = open_ok();
	char *err = NULL;
	struct gw_state_record p = pending_rec(7, 10, 100);
	assert_true(gw_state_mark_pending(st, &inbox, &p, 1, &err));
	gw_state_close(st);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	        sqlite3_exec(
	                db,
	                "INSERT INTO messages (folder_id, uidvalidity, uid, status, origin_key, "
	                "size, internal_date) SELECT folder_id, 7, 11, 'pending', 'k11', 1011, "
	                "110 FROM flights; DROP TABLE flights; "
	                "UPDATE schema_version SET version = 1",
	                NULL, NULL, NULL),
	        SQLITE_OK);
	sqlite3_close(db);
	st = open_ok();
	assert_int_equal(sql_count("SELECT version FROM schema_version"), 2);
	struct collected c = {0};
	assert_true(gw_state_pending(st, &inbox, collect_pending, &c, &err));
	assert_int_equal(c.n, 1);
	assert_int_equal(c.uids[0], 11);
	gw_state_close(st);
}

/* The pending callback may use the handle (resolve rows while listing). */
struct resolve_arg {
	struct gw_state *st;
	int calls;
};

static void resolve_each(const struct gw_state_record *r, void *arg)
{
	struct resolve_arg *a = arg;
	char *err = NULL;
	struct gw_state_record d = done_rec(r->uidvalidity, r->uid, NULL, r->size, "ee");
	assert_true(gw_state_mark_done(a->st, &inbox, &d, 1, &err));
	a->calls++;
}

static void test_pending_callback_may_write(void **state)
{
	struct gw_state *st = open_ok();
	char *err = NULL;
	struct gw_state_record p[2] = {pending_rec(1, 1, 1), pending_rec(1, 2, 2)};
	assert_true(gw_state_mark_pending(st, &inbox, p, 2, &err));
	struct resolve_arg a = {st, 0};
	assert_true(gw_state_pending(st, &inbox, resolve_each, &a, &err));
	assert_int_equal(a.calls, 2);
	expect_done_uids(st, &inbox, 1, (uint32_t[]){1, 2}, 2);
	gw_state_close(st);
}

struct seq_list {
	uint32_t uids[64];
	uint64_t seqs[64];
	char folders[64][16];
	size_t n;
};

static void collect_done(const char *folder, const struct gw_state_record *r, uint64_t seq,
                         void *arg)
{
	struct seq_list *l = arg;
	l->uids[l->n] = r->uid;
	l->seqs[l->n] = seq;
	snprintf(l->folders[l->n], 16, "%s", folder);
	l->n++;
}

static void test_seq_order(void **state)
{
	struct gw_state *st = open_ok();
	char *err = NULL;
	/* Newest first across folders, as the orchestrator migrates. */
	struct gw_state_record b1[2] = {done_rec(1, 50, NULL, 1, "a"),
	                                done_rec(1, 7, NULL, 1, "b")};
	struct gw_state_record b2[1] = {done_rec(2, 3, NULL, 1, "c")};
	struct gw_state_record b3[2] = {done_rec(1, 6, NULL, 1, "d"),
	                                done_rec(1, 60, NULL, 1, "e")};
	assert_true(gw_state_mark_done(st, &inbox, b1, 2, &err));
	assert_true(gw_state_mark_done(st, &sent, b2, 1, &err));
	assert_true(gw_state_mark_done(st, &inbox, b3, 2, &err));
	/* Marking an already done record again keeps its place in the order. */
	assert_true(gw_state_mark_done(st, &inbox, b1, 1, &err));

	struct seq_list l = {0};
	assert_true(gw_state_each_done(st, "p1", "alice@example.org", collect_done, &l, &err));
	assert_int_equal(l.n, 5);
	const uint32_t want[] = {50, 7, 3, 6, 60};
	const char *want_folder[] = {"INBOX", "INBOX", "Sent", "INBOX", "INBOX"};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(l.uids[i], want[i]);
		assert_string_equal(l.folders[i], want_folder[i]);
		if (i > 0)
			assert_true(l.seqs[i] > l.seqs[i - 1]);
	}
	/* Another mailbox sees nothing. */
	struct seq_list other = {0};
	assert_true(gw_state_each_done(st, "p1", "bob@example.org", collect_done, &other, &err));
	assert_int_equal(other.n, 0);
	gw_state_close(st);

	/* seq keeps growing after a reopen. */
	st = open_ok();
	struct gw_state_record b4[1] = {done_rec(1, 1, NULL, 1, "f")};
	assert_true(gw_state_mark_done(st, &inbox, b4, 1, &err));
	struct seq_list l2 = {0};
	assert_true(gw_state_each_done(st, "p1", "alice@example.org", collect_done, &l2, &err));
	assert_int_equal(l2.n, 6);
	assert_int_equal(l2.uids[5], 1);
	assert_true(l2.seqs[5] > l.seqs[4]);
	gw_state_close(st);
}

static void test_find_moved_and_rekey(void **state)
{
	struct gw_state *st = open_ok();
	char *err = NULL;
	struct gw_state_record d[4] = {
	        done_rec(100, 1, "<m1@x>", 500, "h1"),
	        done_rec(100, 2, "<dup@x>", 600, "h2"),
	        done_rec(100, 3, "<dup@x>", 600, "h2"),
	        done_rec(100, 4, NULL, 700, "h4"),
	};
	d[0].sink_id = "1700000000.Gk1.host,S=500";
	d[0].sink_folder = ".Archive";
	assert_true(gw_state_mark_done(st, &inbox, d, 4, &err));

	bool found = false;
	struct gw_state_moved m;
	assert_true(gw_state_find_moved(st, &inbox, 200, "<m1@x>", 500, NULL, &found, &m, &err));
	assert_true(found);
	assert_int_equal(m.uidvalidity, 100);
	assert_int_equal(m.uid, 1);
	assert_string_equal(m.sink_id, "1700000000.Gk1.host,S=500");
	assert_string_equal(m.sink_folder, ".Archive");
	assert_string_equal(m.origin_key, "okey");
	assert_int_equal(m.internal_date, 1000001);

	/* Every criterion counts. */
	assert_true(gw_state_find_moved(st, &inbox, 200, "<m1@x>", 501, NULL, &found, &m, &err));
	assert_false(found);
	assert_true(gw_state_find_moved(st, &inbox, 200, "<m1@x>", 500, "zz", &found, &m, &err));
	assert_false(found);
	assert_true(gw_state_find_moved(st, &inbox, 200, "<m1@x>", 500, "h1", &found, &m, &err));
	assert_true(found);
	assert_true(gw_state_find_moved(st, &sent, 200, "<m1@x>", 500, NULL, &found, &m, &err));
	assert_false(found); /* other folder */
	assert_true(gw_state_find_moved(st, &inbox, 100, "<m1@x>", 500, NULL, &found, &m, &err));
	assert_false(found); /* same uidvalidity is not a move */
	/* Without a Message-ID the hash is required. */
	assert_true(gw_state_find_moved(st, &inbox, 200, NULL, 700, NULL, &found, &m, &err));
	assert_false(found);
	assert_true(gw_state_find_moved(st, &inbox, 200, NULL, 700, "h4", &found, &m, &err));
	assert_true(found);
	assert_int_equal(m.uid, 4);

	/* Re-key m1 to uid 11 of uidvalidity 200; a pending row there is replaced. */
	struct gw_state_record p = pending_rec(200, 11, 5);
	assert_true(gw_state_mark_pending(st, &inbox, &p, 1, &err));
	assert_true(gw_state_rekey(st, &inbox, 100, 1, 200, 11, &err));
	expect_done_uids(st, &inbox, 200, (uint32_t[]){11}, 1);
	expect_done_uids(st, &inbox, 100, (uint32_t[]){2, 3, 4}, 3);
	struct collected c = {0};
	assert_true(gw_state_pending(st, &inbox, collect_pending, &c, &err));
	assert_int_equal(c.n, 0);
	assert_true(gw_state_find_moved(st, &inbox, 200, "<m1@x>", 500, NULL, &found, &m, &err));
	assert_false(found); /* already matched */

	/* Duplicates pair up one to one, earliest first. */
	assert_true(gw_state_find_moved(st, &inbox, 200, "<dup@x>", 600, "h2", &found, &m, &err));
	assert_true(found);
	assert_int_equal(m.uid, 2);
	assert_true(gw_state_rekey(st, &inbox, 100, 2, 200, 12, &err));
	assert_true(gw_state_find_moved(st, &inbox, 200, "<dup@x>", 600, "h2", &found, &m, &err));
	assert_true(found);
	assert_int_equal(m.uid, 3);

	/* Refusals. */
	char want[700];
	assert_false(gw_state_rekey(st, &inbox, 100, 3, 200, 12, &err));
	snprintf(want, sizeof(want),
	         "state %s: uid 12 of uidvalidity 200 is already migrated; not re-keying", path);
	assert_string_equal(err, want);
	free(err);
	err = NULL;
	assert_false(gw_state_rekey(st, &inbox, 100, 99, 200, 13, &err));
	snprintf(want, sizeof(want),
	         "state %s: no migrated message with uidvalidity 100 uid 99 to re-key", path);
	assert_string_equal(err, want);
	free(err);
	assert_int_equal(count_done(st), 4);
	gw_state_close(st);
}

/* ---- two handles, two threads ---- */

struct worker {
	int index;
	bool ok;
	char *error;
};

#define WORKER_BATCHES 60
#define WORKER_BATCH   10

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct gw_state *st = NULL;
	char folder[32];
	snprintf(folder, sizeof(folder), "F%d", w->index);
	struct gw_state_folder_key key = {"p1", "alice@example.org", folder};
	w->ok = gw_state_open(path, &st, &w->error);
	for (int b = 0; w->ok && b < WORKER_BATCHES; b++) {
		struct gw_state_record recs[WORKER_BATCH];
		for (int i = 0; i < WORKER_BATCH; i++) {
			recs[i] = done_rec(1, (uint32_t)(b * WORKER_BATCH + i + 1), NULL, 10, "ab");
			recs[i].sink_id = NULL;
			recs[i].sink_folder = NULL;
			recs[i].sha256_hex = NULL;
		}
		w->ok = gw_state_mark_pending(st, &key, recs, WORKER_BATCH, &w->error);
		for (int i = 0; i < WORKER_BATCH; i++) {
			recs[i].sink_id = "id";
			recs[i].sink_folder = folder;
			recs[i].sha256_hex = "ab";
		}
		w->ok = w->ok && gw_state_mark_done(st, &key, recs, WORKER_BATCH, &w->error);
		uint32_t v;
		w->ok = w->ok && gw_state_folder_uidvalidity(st, &key, &v, &w->error);
	}
	gw_state_close(st);
	return NULL;
}

static void test_concurrent_handles(void **state)
{
	gw_state_close(open_ok()); /* create the schema first, as the orchestrator does */
	pthread_t threads[2];
	struct worker workers[2] = {{.index = 0}, {.index = 1}};
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(threads[i], NULL);
		if (!workers[i].ok)
			fail_msg("worker %d: %s", i, workers[i].error);
	}
	struct gw_state *st = open_ok();
	assert_int_equal(count_done(st), 2 * WORKER_BATCHES * WORKER_BATCH);
	uint32_t *uids = NULL;
	size_t n = 0;
	char *err = NULL;
	struct gw_state_folder_key k0 = {"p1", "alice@example.org", "F0"};
	assert_true(gw_state_done_uids(st, &k0, 1, &uids, &n, &err));
	assert_int_equal(n, WORKER_BATCHES * WORKER_BATCH);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[n - 1], WORKER_BATCHES * WORKER_BATCH);
	free(uids);
	gw_state_close(st);

	/* Every seq distinct: both threads drew from one counter. */
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT count(DISTINCT seq), min(seq), max(seq) FROM "
	                                    "messages WHERE status = 'done'",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 2 * WORKER_BATCHES * WORKER_BATCH);
	assert_int_equal(sqlite3_column_int(q, 1), 1);
	assert_int_equal(sqlite3_column_int(q, 2), 2 * WORKER_BATCHES * WORKER_BATCH);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void test_runs(void **state)
{
	struct gw_state *st = open_ok();
	int64_t a = 0, b = 0;
	char *err = NULL;
	assert_true(gw_state_run_begin(st, &a, &err));
	assert_true(gw_state_run_begin(st, &b, &err));
	assert_true(b > a);
	assert_true(gw_state_run_end(st, a, "completed", &err));
	assert_false(gw_state_run_end(st, 12345, "failed", &err));
	char want[700];
	snprintf(want, sizeof(want), "state %s: no run 12345 to finish", path);
	assert_string_equal(err, want);
	free(err);
	gw_state_close(st);
}

/* Closing leaves the run's commits in the WAL (no checkpoint, so no fsyncs at
 * the end of every run); another process reading the file sees them, and the
 * next open goes on from them. */
static void test_close_keeps_wal(void **state)
{
	struct gw_state *st = open_ok();
	int64_t run = 0;
	char *err = NULL;
	assert_true(gw_state_run_begin(st, &run, &err));
	assert_true(gw_state_set_folder_uidvalidity(st, &inbox, 42, &err));
	assert_true(gw_state_run_end(st, run, "completed", &err));
	gw_state_close(st);

	char wal[600];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	struct stat sb;
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size > 0);

	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT id, status FROM runs", -1, &q, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(q, 0), run);
	assert_string_equal((const char *)sqlite3_column_text(q, 1), "completed");
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(db);

	st = open_ok();
	uint32_t v = 0;
	assert_true(gw_state_folder_uidvalidity(st, &inbox, &v, &err));
	assert_int_equal(v, 42);
	gw_state_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_schema_and_reopen, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_schema_lost_is_written_again, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_folder_uidvalidity, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pending_to_done, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pending_in_flight, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_damaged_flight_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_schema_1_migrated, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pending_callback_may_write, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_seq_order, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_find_moved_and_rekey, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_concurrent_handles, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_runs, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_close_keeps_wal, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, remove_dir);
}
