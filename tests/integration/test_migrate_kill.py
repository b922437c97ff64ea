"""End to end: stopping a run at any moment loses nothing and duplicates nothing.

SIGKILL at several points (between commits, while a batch is in the
sink but not yet committed, while one batch flushes in the background
and the next is fetched, and while a flushed batch waits for its done marks),
then a re-run: the Maildir holds every source
message exactly once (hash multisets equal). SIGINT stops gracefully (the
batch in flight is committed, nothing stays pending, status "interrupted");
a second SIGINT stops at once.
"""

import os
import re
import signal
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import (MigrationCase, dovecot, mailbox_of, read_sink, seed,  # noqa: E402
                             wait_until)

ALICE = "alice@example.org"


def in_flight_resolved(stderr):
    """(messages in flight, of them found in the sink) per folder a run settled."""
    return [(int(n), int(found)) for n, found in re.findall(
        r"(\d+) message\(s\) in flight when an earlier run stopped: (\d+) found in the sink",
        stderr)]


def maildir_files(root):
    n = 0
    for dirpath, dirnames, files in os.walk(root):
        if os.path.basename(dirpath) in ("cur", "new"):
            n += len(files)
    return n


class Kill(MigrationCase):
    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot()
        cls.dv.start()
        # Generated mail only: the kill points must not depend on whether the
        # real-world corpus is beside the clone (it adds ~600 messages when it is).
        seeded = seed.seed_user(cls.dv, "alice", generated=4400, corpus=False)
        if seeded.problems:
            raise AssertionError("seeding: %s" % seeded.problems)
        cls.total = seeded.manifest.count()
        assert cls.total > 4 * 1024, "the kill points need a mailbox of several batches"

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def setUp(self):
        super().setUp()
        # 1024 messages in flight (the default, 4096, would make this mailbox one
        # batch), shared by the mailbox's connections and, since the maildir sink
        # flushes in the background, by the two batches each has in flight.
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])],
                                limits={"batch_messages": 1024})

    def done_count(self):
        if not os.path.exists(self.work.state):
            return 0
        try:
            with self.work.db() as con:
                return con.execute("SELECT count(*) FROM messages WHERE status = 'done'"
                                   ).fetchone()[0]
        except sqlite3.OperationalError:
            return 0  # schema not created yet

    def stop_when(self, predicate, sig, timeout=120):
        proc = self.work.start()
        reached = wait_until(lambda: predicate() or proc.poll() is not None, timeout, 0.005)
        still_running = proc.poll() is None
        if still_running:
            os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
        if hasattr(predicate, "release"):
            predicate.release()
        self.assertTrue(reached and still_running,
                        "the run ended before the stop point\n%s\n%s" % (out, err[-3000:]))
        return proc, out, err

    def assertExactlyOnce(self):
        source, sink = self.assertSinkEqualsSource(self.dv, "alice", ALICE,  # duplicates too
                                                   allow_tmp=True)
        self.assertEqual(self.total, sink.count())
        self.assertEqual(self.total, self.done_count())
        self.assertEqual(0, self.work.pending_count())

    def use_one_connection(self):
        """Batches of 512: batch_messages over the two in flight on one connection."""
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])],
                                limits={"batch_messages": 1024, "connections_per_mailbox": 1})

    def rerun_settling(self, in_flight):
        """The re-run settles exactly the messages left in flight; returns it and how
        many of them it found in the sink."""
        final = self.work.run()
        self.assertRun(final, 0)
        resolved = in_flight_resolved(final.stderr)
        self.assertEqual(in_flight, sum(n for n, _found in resolved))
        return final, sum(found for _n, found in resolved)

    def sink_ahead_of_state(self, root):
        """A predicate that is true once the sink holds 20+ messages the state has
        not committed, holding the state's write lock meanwhile (released at kill)."""
        held = {}

        def predicate():
            if "con" not in held:
                if self.done_count() < 1500 or self.work.pending_count() == 0:
                    return False
                con = sqlite3.connect(self.work.state, timeout=10, isolation_level=None)
                con.execute("BEGIN IMMEDIATE")
                held["con"] = con
                self.addCleanup(con.close)
            return maildir_files(root) >= self.done_count() + 20

        def release():
            if "con" in held:
                held.pop("con").close()

        predicate.release = release
        return predicate

    def test_sigkill_at_several_points(self):
        root = self.work.maildir(ALICE)
        points = [
            ("after the first commits", lambda: self.done_count() >= 40),
            # The sink has more than the state: a batch is written, not yet committed.
            # That window is short; the test widens it by holding SQLite's write
            # lock from the moment a batch is pending, so godwit's "done" commit
            # waits (busy timeout) after the sink's flush, and is killed there.
            ("inside a batch", self.sink_ahead_of_state(root)),
            # At most 1024 messages are in flight (limits.batch_messages): this is near the end.
            ("late in the run", lambda: self.done_count() >= self.total - 1100),
        ]
        copied = []
        pending_after = []
        stderr_of_runs = []
        for label, predicate in points:
            proc, out, err = self.stop_when(predicate, signal.SIGKILL)
            self.assertEqual(-signal.SIGKILL, proc.returncode, label)
            stderr_of_runs.append(err)
            copied.append(self.done_count())
            pending_after.append(self.work.pending_count())
        self.assertEqual(copied, sorted(copied), "each run went further")
        # Killed inside a batch: rows stayed pending, and the next run asked the sink.
        self.assertGreater(pending_after[1], 0)
        resolved = in_flight_resolved(stderr_of_runs[2])
        self.assertEqual(pending_after[1], sum(n for n, _found in resolved))
        self.assertGreater(sum(found for _n, found in resolved), 0)
        final = self.work.run()
        self.assertRun(final, 0)
        box = mailbox_of(self.work.report_of(final.stdout), ALICE)
        self.assertEqual("completed", box["status"])
        self.assertEqual(self.total, box["migrated"] + box["already_present"])
        self.assertEqual([], box["warnings"])
        self.assertExactlyOnce()

    def test_sigkill_with_two_batches_in_flight(self):
        # The maildir sink flushes a batch in the background while the next is
        # fetched (flush_begin), so a connection has two batches pending at once.
        # One connection: batches of 512 (batch_messages over the two in flight),
        # so more than 512 pending are two batches. Killed then, the re-run
        # settles both and copies the rest exactly once.
        self.use_one_connection()

        def pending():
            try:
                return self.work.pending_count()
            except sqlite3.OperationalError:
                return 0  # schema not created yet

        proc, out, err = self.stop_when(lambda: pending() > 512, signal.SIGKILL)
        self.assertEqual(-signal.SIGKILL, proc.returncode)
        in_flight = self.work.pending_count()
        self.assertGreater(in_flight, 512, "two batches were pending")
        self.assertLessEqual(in_flight, 1024)
        self.rerun_settling(in_flight)
        self.assertExactlyOnce()

    def test_sigkill_with_a_flushed_batch_not_yet_marked_done(self):
        # A batch's done marks are written with the pending marks of the batch
        # after next, at its first message: from the moment the first batch's
        # flush has put it into cur/ until then, the sink holds a whole batch
        # that the state still has pending. Killed in that window, the re-run
        # finds exactly those messages in the sink and copies the rest once.
        self.use_one_connection()
        root = self.work.maildir(ALICE)
        proc, out, err = self.stop_when(
            lambda: self.done_count() == 0 and maildir_files(root) >= 512, signal.SIGKILL)
        self.assertEqual(-signal.SIGKILL, proc.returncode)
        in_sink = maildir_files(root)
        self.assertEqual(0, self.done_count())
        # The first batch of 512 (the second's flight may have begun to land too).
        self.assertTrue(512 <= in_sink <= 1024, in_sink)
        in_flight = self.work.pending_count()
        self.assertGreaterEqual(in_flight, in_sink)
        self.assertLessEqual(in_flight, 1024)
        final, found = self.rerun_settling(in_flight)
        self.assertEqual(in_sink, found)
        box = mailbox_of(self.work.report_of(final.stdout), ALICE)
        self.assertEqual((self.total - in_sink, in_sink),
                         (box["migrated"], box["already_present"]))
        self.assertExactlyOnce()

    def test_sigint_stops_gracefully_then_resumes(self):
        proc, out, err = self.stop_when(lambda: self.done_count() >= 100, signal.SIGINT)
        self.assertEqual(1, proc.returncode, err[-3000:])
        self.assertIn("stopping after the messages in flight", err)
        report = self.work.report_of(out)
        box = mailbox_of(report, ALICE)
        self.assertEqual("interrupted", box["status"])
        self.assertEqual(1, report["totals"]["interrupted"])
        # Graceful: what reached the sink was committed, nothing is left pending.
        self.assertEqual(0, self.work.pending_count())
        self.assertEqual(box["migrated"], self.done_count())
        self.assertEqual(box["migrated"], maildir_files(self.work.maildir(ALICE)))
        self.assertLess(box["migrated"], self.total)
        final = self.work.run()
        self.assertRun(final, 0)
        box2 = mailbox_of(self.work.report_of(final.stdout), ALICE)
        self.assertEqual((self.total - box["migrated"], box["migrated"]),
                         (box2["migrated"], box2["already_present"]))
        self.assertExactlyOnce()

    def test_second_signal_stops_at_once(self):
        proc = self.work.start()
        wait_until(lambda: self.done_count() >= 100 or proc.poll() is not None, 120, 0.005)
        self.assertIsNone(proc.poll(), "the run ended before the stop point")
        # Two different signals, so the second cannot merge with a still pending first.
        os.kill(proc.pid, signal.SIGINT)
        os.kill(proc.pid, signal.SIGTERM)
        began = time.monotonic()
        out, err = proc.communicate(timeout=60)
        self.assertLess(time.monotonic() - began, 10)
        self.assertEqual(1, proc.returncode, err[-3000:])
        self.assertIn("stopping at once", err)
        box = mailbox_of(self.work.report_of(out), ALICE)
        self.assertEqual("interrupted", box["status"])
        final = self.work.run()
        self.assertRun(final, 0)
        self.assertExactlyOnce()


if __name__ == "__main__":
    unittest.main()
