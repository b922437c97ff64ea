"""End to end: several mailboxes in parallel within the connection budgets,
a mailbox copied on two connections (lanes) within the budgets and the
server's per-user limit, and a connection dropped by the server in the
middle of a mailbox (the scheduler reconnects and continues where the state
says)."""

import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import MigrationCase, dovecot, mailbox_of, seed, wait_until  # noqa: E402

USERS = ("alice", "bob", "carol", "dave")


class Parallel(MigrationCase):
    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot(users={u: u.capitalize() + "-pw-7" for u in USERS})
        cls.dv.start()
        cls.counts = {}
        for user in USERS:
            seeded = seed.seed_user(cls.dv, user, generated=150 if user != "alice" else 3000,
                                    corpus=False, seed=user)
            if seeded.problems:
                raise AssertionError("seeding %s: %s" % (user, seeded.problems))
            cls.counts[user] = seeded.manifest.count()

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def mailboxes(self, users=USERS):
        return [("%s@example.org" % u, u, self.dv.users[u]) for u in users]

    def test_parallel_mailboxes_within_budgets(self):
        self.work.write_profile(self.dv, self.mailboxes(),
                                limits={"mailboxes_in_parallel": 4, "source_connections": 2,
                                        "sink_connections": 3})
        proc = self.work.run()
        self.assertRun(proc, 0)
        report = self.work.report_of(proc.stdout)
        for user in USERS:
            email = "%s@example.org" % user
            box = mailbox_of(report, email)
            self.assertEqual(("completed", self.counts[user]), (box["status"], box["migrated"]))
            self.assertSinkEqualsSource(self.dv, user, email)
        budgets = {b["budget"]: b for b in report["connections"]}
        source = budgets["source imap %s" % self.dv.host]
        sink = budgets["sink maildir (pipeline e2e)"]
        # Four workers compete for two source connections: the limit is reached, never passed.
        self.assertEqual((2, 2), (source["limit"], source["peak"]))
        self.assertEqual(3, sink["limit"])
        self.assertLessEqual(sink["peak"], 2, "a worker takes a sink slot only with a source one")
        self.assertEqual(len(USERS), report["totals"]["completed"])

    def test_dropped_connection_is_retried(self):
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        self.work.write_profile(self.dv, self.mailboxes(("alice",)),
                                limits={"batch_messages": 1024})
        proc = self.work.start()

        def copied():
            if not os.path.exists(self.work.state):
                return 0
            try:
                with self.work.db() as con:
                    return con.execute("SELECT count(*) FROM messages WHERE status = 'done'"
                                       ).fetchone()[0]
            except Exception:
                return 0

        # After the first batch (1024 messages) is committed, the connection is in use.
        wait_until(lambda: copied() >= 1024 or proc.poll() is not None, 120, 0.005)
        self.assertIsNone(proc.poll(), "the run ended before the connection could be dropped")
        kick = subprocess.run([doveadm, "-c", self.dv.config_file, "kick", "alice"],
                              capture_output=True, text=True)
        self.assertEqual(0, kick.returncode, kick.stderr)
        out, err = proc.communicate(timeout=300)
        self.assertEqual(0, proc.returncode, err[-4000:])
        box = mailbox_of(self.work.report_of(out), "alice@example.org")
        self.assertEqual("completed", box["status"])
        self.assertGreaterEqual(box["attempts"], 2)
        self.assertIn("retrying in", err)
        self.assertEqual(self.counts["alice"], box["migrated"])
        self.assertSinkEqualsSource(self.dv, "alice", "alice@example.org")
        self.assertEqual(0, self.work.pending_count())


class Lanes(MigrationCase):
    """One mailbox, several connections: as many as the profile, the budgets and the
    server allow, and exact whichever it is."""

    @classmethod
    def setUpClass(cls):
        # The server allows one connection per user and IP, as a strict admin might.
        cls.strict = dovecot.Dovecot(users={"alice": "Alice-pw-7"}, max_user_connections=1)
        cls.strict.start()
        cls.dv = dovecot.Dovecot(users={"alice": "Alice-pw-7"})
        cls.dv.start()
        for dv in (cls.strict, cls.dv):
            seeded = seed.seed_user(dv, "alice", generated=400, corpus=False, seed="lanes")
            if seeded.problems:
                raise AssertionError("seeding: %s" % seeded.problems)
        cls.count = seeded.manifest.count()

    @classmethod
    def tearDownClass(cls):
        cls.strict.stop()
        cls.dv.stop()

    def migrate(self, dv, limits):
        self.work.write_profile(dv, [("alice@example.org", "alice", dv.users["alice"])],
                                limits=limits)
        proc = self.work.run()
        self.assertRun(proc, 0)
        report = self.work.report_of(proc.stdout)
        box = mailbox_of(report, "alice@example.org")
        self.assertEqual(("completed", self.count), (box["status"], box["migrated"]))
        self.assertSinkEqualsSource(dv, "alice", "alice@example.org")
        self.assertEqual(0, self.work.pending_count())
        budgets = {b["budget"]: b for b in report["connections"]}
        return proc, box, budgets["source imap %s" % dv.host]

    def test_four_lanes_within_the_budget(self):
        proc, box, source = self.migrate(self.dv, {"connections_per_mailbox": 4,
                                                   "source_connections": 3})
        self.assertEqual(3, box["connections"])
        self.assertEqual((3, 3), (source["limit"], source["peak"]))

    def test_one_connection_when_the_budget_has_no_more(self):
        proc, box, source = self.migrate(self.dv, {"source_connections": 1})
        self.assertEqual(1, box["connections"])
        self.assertEqual(1, source["peak"])
        self.assertNotIn("connection 2", proc.stderr)

    def test_server_refusing_a_second_connection(self):
        proc, box, source = self.migrate(self.strict, {"connections_per_mailbox": 2})
        # The second lane's login was refused: its folders went over the first.
        self.assertEqual(1, box["connections"])
        self.assertEqual(2, source["peak"], "the slot was taken, and given back")
        self.assertRegex(proc.stderr, r"connection 2 of the mailbox: .*Maximum number of "
                         r"connections.*; its folders are copied on the first connection")


if __name__ == "__main__":
    unittest.main()
