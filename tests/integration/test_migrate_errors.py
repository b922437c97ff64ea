"""End to end: failures stay with the mailbox they belong to.

A wrong password fails that mailbox with a clear message while the others
complete (exit code 1), and so does a state write that fails (the worker's
state handle goes on to the next mailbox); an unreachable server and an untrusted certificate
are clear errors; tls_verify: false accepts the certificate. Passwords never
appear in output, reports or state.
"""

import os
import socket
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import MigrationCase, dovecot, mailbox_of, read_sink, seed  # noqa: E402

ALICE = "alice@example.org"
BOB = "bob@example.org"
CAROL = "carol@example.org"
WRONG = "Wrong-Password-4711"


def closed_port():
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Errors(MigrationCase):
    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot(users={"alice": "Alice-pw-1", "bob": "Bob-pw-2",
                                        "carol": "Carol-pw-3"})
        cls.dv.start()
        cls.counts = {}
        for user in ("alice", "bob", "carol"):
            seeded = seed.seed_user(cls.dv, user, generated=30, corpus=False, seed=user)
            if seeded.problems:
                raise AssertionError("seeding %s: %s" % (user, seeded.problems))
            cls.counts[user] = seeded.manifest.count()

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def assertNoSecretAnywhere(self, proc, secret):
        self.assertNotIn(secret, proc.stdout)
        self.assertNotIn(secret, proc.stderr)
        for path in self.work.report_files():
            with open(path, encoding="utf-8") as f:
                self.assertNotIn(secret, f.read())
        with open(self.work.state, "rb") as f:
            self.assertNotIn(secret.encode(), f.read())

    def test_wrong_password_fails_only_that_mailbox(self):
        users = self.dv.users
        self.work.write_profile(self.dv, [(ALICE, "alice", users["alice"]),
                                          (BOB, "bob", WRONG),
                                          (CAROL, "carol", users["carol"])],
                                limits={"mailboxes_in_parallel": 2})
        proc = self.work.run()
        self.assertRun(proc, 1)
        report = self.work.report_of(proc.stdout)
        bob = mailbox_of(report, BOB)
        self.assertEqual("failed", bob["status"])
        self.assertRegex(bob["error"], r"^source imap: .*(AUTHENTICATIONFAILED|[Aa]uthentication)")
        self.assertEqual(1, bob["attempts"], "an auth error is final: no retry")
        self.assertIn(bob["error"], proc.stderr)
        for email, user in ((ALICE, "alice"), (CAROL, "carol")):
            box = mailbox_of(report, email)
            self.assertEqual("completed", box["status"], box["error"])
            self.assertEqual(self.counts[user], box["migrated"])
            self.assertSinkEqualsSource(self.dv, user, email)
        self.assertFalse(os.path.exists(os.path.join(self.work.maildir(BOB), "cur")))
        self.assertEqual((2, 1), (report["totals"]["completed"], report["totals"]["failed_mailboxes"]))
        self.assertIn("mailboxes: 2 completed, 0 partial, 1 failed, 0 interrupted (of 3)",
                      proc.stdout)
        self.assertNoSecretAnywhere(proc, WRONG)
        self.assertNoSecretAnywhere(proc, users["alice"])

    def test_failed_state_write_fails_only_that_mailbox(self):
        # One worker, so the mailboxes after the failed one use the same state
        # handle: a write that fails inside a batch's transaction must end it.
        users = self.dv.users
        self.work.write_profile(self.dv, [(BOB, "bob", users["bob"])])
        self.assertRun(self.work.run(), 0)
        with sqlite3.connect(self.work.state, isolation_level=None) as con:
            for event in ("INSERT", "UPDATE"):  # a done row is new, or a pending row's
                con.execute("CREATE TRIGGER refuse_alice_%s BEFORE %s ON messages "
                            "WHEN NEW.status = 'done' AND NEW.folder_id IN "
                            "(SELECT id FROM folders WHERE mailbox = '%s') "
                            "BEGIN SELECT RAISE(ABORT, 'injected refusal'); END"
                            % (event.lower(), event, ALICE))
        self.work.write_profile(self.dv, [(ALICE, "alice", users["alice"]),
                                          (CAROL, "carol", users["carol"])],
                                limits={"mailboxes_in_parallel": 1})
        proc = self.work.run()
        self.assertRun(proc, 1)
        report = self.work.report_of(proc.stdout)
        alice = mailbox_of(report, ALICE)
        self.assertEqual("failed", alice["status"])
        self.assertRegex(alice["error"], r"^state: .*injected refusal")
        self.assertEqual(0, alice["migrated"])
        carol = mailbox_of(report, CAROL)
        self.assertEqual("completed", carol["status"], carol["error"])
        self.assertEqual(self.counts["carol"], carol["migrated"])
        self.assertSinkEqualsSource(self.dv, "carol", CAROL)
        # Nothing of alice was recorded done; the re-run finds what reached her
        # Maildir and copies the rest, each message once.
        with sqlite3.connect(self.work.state, isolation_level=None) as con:
            con.execute("DROP TRIGGER refuse_alice_insert")
            con.execute("DROP TRIGGER refuse_alice_update")
        self.work.write_profile(self.dv, [(ALICE, "alice", users["alice"])])
        again = self.work.run()
        self.assertRun(again, 0)
        alice = mailbox_of(self.work.report_of(again.stdout), ALICE)
        self.assertEqual("completed", alice["status"], alice["error"])
        self.assertEqual(self.counts["alice"], alice["migrated"] + alice["already_present"])
        self.assertSinkEqualsSource(self.dv, "alice", ALICE)
        self.assertEqual(0, self.work.pending_count())

    def test_unreachable_server(self):
        port = closed_port()
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])],
                                source={"port": port}, limits={"retries": 1})
        began = time.monotonic()
        proc = self.work.run()
        self.assertRun(proc, 1)
        self.assertLess(time.monotonic() - began, 30)
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        self.assertEqual("failed", box["status"])
        self.assertEqual(2, box["attempts"], "a session error is retried `retries` times")
        self.assertIn("127.0.0.1:%d" % port, box["error"])
        self.assertRegex(box["error"], r"[Cc]onnection refused.*\(gave up after 2 attempts\)$")
        self.assertIn("retrying in", proc.stderr)

    def test_untrusted_certificate_is_refused(self):
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])],
                                source={"ca_file": None}, limits={"retries": 0})
        proc = self.work.run()
        self.assertRun(proc, 1)
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        self.assertEqual("failed", box["status"])
        self.assertRegex(box["error"], r"^source imap: .*certificate")
        self.assertEqual(0, box["migrated"])
        self.assertNoSecretAnywhere(proc, self.dv.users["alice"])

    def test_tls_verify_false_accepts_the_certificate(self):
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])],
                                source={"ca_file": None, "tls_verify": False})
        proc = self.work.run()
        self.assertRun(proc, 0)
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        self.assertEqual(self.counts["alice"], box["migrated"])
        self.assertEqual(self.counts["alice"], read_sink(self.work.maildir(ALICE)).count())


if __name__ == "__main__":
    unittest.main()
