"""End to end: the source folder's UIDVALIDITY changes between runs.

Every UID recorded in the state is then meaningless. godwit must re-match what
it already copied (by SHA-256, size and Message-ID; messages without a
Message-ID and messages sharing one by their bytes) and copy only what is
really new: no duplicate in the sink, nothing lost.
"""

import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import MigrationCase, dovecot, mailbox_of, mailgen, seed  # noqa: E402
from harness import imapio  # noqa: E402

ALICE = "alice@example.org"


def uidvalidity(client, folder):
    typ, data = client.select(imapio.quote(folder), readonly=True)
    assert typ == "OK", data
    return int(client.untagged_responses["UIDVALIDITY"][0])


class UidvalidityChange(MigrationCase):
    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot()
        cls.dv.start()
        # The edge cases include messages without a Message-ID and two that share one.
        seeded = seed.seed_user(cls.dv, "alice", generated=120, corpus=False)
        if seeded.problems:
            raise AssertionError("seeding: %s" % seeded.problems)

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def reset_uidvalidity(self):
        """Dovecot gives a Maildir folder a new UIDVALIDITY when its uidlist and
        indexes are gone (as after a restore from backup)."""
        root = self.dv.maildir_of("alice")
        removed = 0
        for path in glob.glob(os.path.join(root, "dovecot-uidlist")) + glob.glob(
                os.path.join(root, "dovecot.index*")):
            os.unlink(path)
            removed += 1
        self.assertGreater(removed, 0, "no uidlist/index under %s" % root)

    def test_changed_uidvalidity_copies_nothing_twice(self):
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])])
        first = self.work.run()
        self.assertRun(first, 0)
        source, _ = self.assertSinkEqualsSource(self.dv, "alice", ALICE)
        inbox_count = len(source["INBOX"])
        self.assertGreater(inbox_count, 10)

        client = self.dv.imap("alice")
        try:
            before = uidvalidity(client, "INBOX")
        finally:
            client.logout()
        time.sleep(1.1)  # Dovecot derives a new UIDVALIDITY from the clock
        self.reset_uidvalidity()
        client = self.dv.imap("alice")
        try:
            after = uidvalidity(client, "INBOX")
            # One new message arrives in INBOX as well: it, and only it, is copied.
            new = mailgen.generate(1, seed=991)[0]
            imapio.append_many(client, [("INBOX", new.flags, new.internaldate, new.data)])
        finally:
            client.logout()
        self.assertNotEqual(before, after, "the test could not change UIDVALIDITY")

        second = self.work.run()
        self.assertRun(second, 0)
        box = mailbox_of(self.work.report_of(second.stdout), ALICE)
        self.assertEqual(1, box["migrated"], box)
        inbox = [f for f in box["folders"] if f["source"] == "INBOX"][0]
        self.assertEqual(inbox_count, inbox["rematched"])
        self.assertTrue(any("UIDVALIDITY changed from %d to %d" % (before, after) in w
                            for w in box["warnings"]), box["warnings"])
        # Same multiset of bytes on both sides: nothing duplicated, nothing lost.
        self.assertSinkEqualsSource(self.dv, "alice", ALICE)

        third = self.work.run()
        self.assertRun(third, 0)
        self.assertEqual(0, mailbox_of(self.work.report_of(third.stdout), ALICE)["migrated"])


if __name__ == "__main__":
    from harness.testcase import main
    main()
