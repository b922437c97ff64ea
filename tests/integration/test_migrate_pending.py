"""End to end: the core records every message in its state (pending) before the
sink is given it, so that a crash at any point leaves nothing in the sink that
the next run would not look up (state.h). The core writes a batch's pending
rows once the source streams the batch, together with the done marks of the
batch flushed before, and must have committed them before the first append.

The sink is tests/plugins/sink_stateprobe.c, which reads the state file at each
append through a connection of its own (committed rows only: what a crash would
leave), in both of the core's ways of committing a batch: flushed in the
background while the next batch is fetched (probe-background, as the maildir
sink) and flushed while the core waits (probe-direct, as the imap sink).
Batches of one or two messages make every message the first of its batch."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import MigrationCase, dovecot, godwit_bin, mailbox_of, seed  # noqa: E402

ALICE = "alice@example.org"


def tests_plugin_dir():
    """tests/plugins' output beside the real plugins (GODWIT_TEST_PLUGIN_DIR)."""
    return os.path.join(os.path.dirname(os.path.dirname(godwit_bin())), "tests", "plugins")


def probe_totals(log):
    """Sums of the probe's session lines, and the origin keys it found missing."""
    totals = {"sessions": 0, "checked": 0, "missing": 0, "flushes": 0}
    missing = []
    with open(log, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if words[0] == "missing":
                missing.append(words[1])
                continue
            fields = dict(zip(words[0::2], map(int, words[1::2])))
            totals["sessions"] += 1
            for key in ("checked", "missing", "flushes"):
                totals[key] += fields[key]
    return totals, missing


class PendingBeforeDurable(MigrationCase):
    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot()
        cls.dv.start()
        seeded = seed.seed_user(cls.dv, "alice", generated=300, corpus=False)
        if seeded.problems:
            raise AssertionError("seeding: %s" % seeded.problems)
        cls.count = seeded.manifest.count()

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def run_probe(self, variant, connections):
        """A migration into the probe sink; its totals once the run is over."""
        log = os.path.join(self.work.path, "probe.log")
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])],
                                limits={"batch_messages": 2,
                                        "connections_per_mailbox": connections},
                                sink={"plugin": "probe-" + variant, "state": self.work.state,
                                      "log": log})
        proc = self.work.run("--plugin-path", tests_plugin_dir(), timeout=300)
        self.assertRun(proc, 0)
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        self.assertEqual(("completed", self.count), (box["status"], box["migrated"]))
        with self.work.db() as con:
            done = con.execute("SELECT count(*) FROM messages WHERE status = 'done'").fetchone()[0]
        self.assertEqual(self.count, done)
        return probe_totals(log)

    def check(self, variant, connections, flush_per_message):
        totals, missing = self.run_probe(variant, connections)
        self.assertEqual([], missing, "messages the sink could keep before the state had them")
        self.assertEqual(0, totals["missing"])
        self.assertEqual(self.count, totals["checked"], "every message was checked")
        self.assertEqual(connections, totals["sessions"])
        # Batches of at most two messages: a transaction for every one or two.
        self.assertGreaterEqual(totals["flushes"], self.count // (1 if flush_per_message else 2))

    def test_background_flush_pending_before_each_append(self):
        # batch_messages 2 shared by the two batches in flight: a batch per message.
        self.check("background", 1, True)

    def test_background_flush_on_two_connections(self):
        self.check("background", 2, True)

    def test_direct_flush_pending_before_each_append(self):
        self.check("direct", 1, False)


if __name__ == "__main__":
    unittest.main()
