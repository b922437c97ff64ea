"""End to end: message caps and filters - max_count keeps the newest over the
whole mailbox, max_size skips and reports larger messages, since filters by date.
Every message left out is in the report with its folder and UID."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import (MigrationCase, dovecot, mailbox_of, mailgen,  # noqa: E402
                             read_sink, seed, verify)

ALICE = "alice@example.org"
BIG_SIZES = (100_001, 150_000, 240_000, 400_000)


def keyed(manifest):
    """{(folder, uid): message} of a source manifest."""
    return {(folder, m["uid"]): m for folder, msgs in manifest.items() for m in msgs}


def skipped_in_report(box, reason):
    return {(f["source"], s["uid"]): s for f in box["folders"] for s in f["skipped"]
            if s["reason"] == reason}


class Caps(MigrationCase):
    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot()
        cls.dv.start()
        seeded = seed.seed_user(cls.dv, "alice", generated=250, corpus=False)
        if seeded.problems:
            raise AssertionError("seeding: %s" % seeded.problems)
        client = cls.dv.imap("alice")
        try:
            for i, size in enumerate(BIG_SIZES):
                msg = mailgen.GenMessage("big/%d" % i, mailgen.message_of_size(size, seed=i),
                                         1_300_000_000 + i * 86400 * 400, ("\\Seen",))
                seed.append_messages(client, ("INBOX", "Archive/2019", "Sent", "日本語")[i], [msg])
        finally:
            client.logout()

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def setUp(self):
        super().setUp()
        client = self.dv.imap("alice")  # read afresh: a test may have added mail
        try:
            self.source = verify.read_server(client)
        finally:
            client.logout()

    def profile(self, **messages):
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])],
                                messages=messages)

    def test_max_count_keeps_newest_over_the_mailbox(self):
        self.profile(max_count=100)
        proc = self.work.run()
        self.assertRun(proc, 0)
        everything = keyed(self.source)
        newest = sorted(everything, key=lambda k: everything[k]["internaldate"], reverse=True)
        dates = [everything[k]["internaldate"] for k in newest]
        self.assertNotEqual(dates[99], dates[100], "the seeded dates must not tie at the cut")
        kept, over = set(newest[:100]), set(newest[100:])

        sink = read_sink(self.work.maildir(ALICE))
        self.assertEqual(100, sink.count())
        expected_hashes = sorted(everything[k]["sha256"] for k in kept)
        self.assertEqual(expected_hashes, sorted(sink.hashes().elements()))

        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        self.assertEqual("completed", box["status"])
        self.assertEqual(100, box["migrated"])
        self.assertEqual(len(over), box["skipped_over_cap"])
        self.assertEqual(over, set(skipped_in_report(box, "over cap")))
        self.assertIn("skipped:   %d (0 too large, %d over cap, 0 filtered)"
                      % (len(over), len(over)), proc.stdout)

        # The cap counts what earlier runs copied: running again copies nothing...
        again = self.work.run()
        self.assertRun(again, 0)
        box = mailbox_of(self.work.report_of(again.stdout), ALICE)
        self.assertEqual((0, 100, len(over)),
                         (box["migrated"], box["already_present"], box["skipped_over_cap"]))
        # ...and three newer messages take the place of the three oldest kept ones.
        client = self.dv.imap("alice")
        try:
            now = int(time.time())
            news = [mailgen.GenMessage("new/%d" % i, mailgen.message_of_size(500 + i, seed=77),
                                       now - i * 60) for i in range(3)]
            seed.append_messages(client, "INBOX", news)
            later = verify.read_server(client)
        finally:
            client.logout()
        third = self.work.run()
        self.assertRun(third, 0)
        box = mailbox_of(self.work.report_of(third.stdout), ALICE)
        self.assertEqual(3, box["migrated"])
        # The three oldest copied before stay in the sink (already present, not over cap).
        self.assertEqual(100, box["already_present"])
        self.assertEqual(later.count() - 103, box["skipped_over_cap"])
        self.assertEqual(103, read_sink(self.work.maildir(ALICE)).count())

    def test_max_size_skips_and_reports_larger_messages(self):
        self.profile(max_size="100KB")
        proc = self.work.run()
        self.assertRun(proc, 0)
        everything = keyed(self.source)
        large = {k for k, m in everything.items() if m["size"] > 100_000}
        self.assertGreaterEqual(len(large), len(BIG_SIZES))
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        self.assertEqual("completed", box["status"])
        reported = skipped_in_report(box, "too large")
        self.assertEqual(large, set(reported))
        for key, entry in reported.items():
            self.assertEqual(everything[key]["size"], entry["size"])
            self.assertEqual(100_000, entry["limit"])
        self.assertEqual(len(large), box["skipped_too_large"])
        self.assertEqual(len(everything) - len(large), box["migrated"])
        sink = read_sink(self.work.maildir(ALICE))
        expected = sorted(m["sha256"] for k, m in everything.items() if k not in large)
        self.assertEqual(expected, sorted(sink.hashes().elements()))
        # A message of exactly the limit is not too large: 100,001 bytes is.
        self.assertIn(("INBOX", max(uid for f, uid in large if f == "INBOX")), large)

    def test_since_filters_older_messages(self):
        cut = 1_420_070_400  # 2015-01-01T00:00:00Z
        self.profile(since="2015-01-01")
        proc = self.work.run()
        self.assertRun(proc, 0)
        everything = keyed(self.source)
        older = {k for k, m in everything.items() if m["internaldate"] < cut}
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        filtered = skipped_in_report(box, "filtered: older than since")
        self.assertEqual(older, set(filtered))
        self.assertEqual(len(everything) - len(older), box["migrated"])
        some = next(iter(filtered))
        self.assertEqual(time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                       time.gmtime(everything[some]["internaldate"])),
                         filtered[some]["internal_date"])


if __name__ == "__main__":
    unittest.main()
