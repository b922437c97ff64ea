"""End to end: a real Dovecot mailbox migrated into Maildir by `godwit run`.

Fidelity (bytes by SHA-256, flags, internal date as mtime, folder tree),
idempotent re-runs, incremental sync of new mail, arrival order newest
first, and the report's counts.
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import (MigrationCase, dovecot, godwit_bin, mailbox_of,  # noqa: E402
                             mailgen, plugin_dir, read_sink, seed, verify)

ALICE = "alice@example.org"
BATCH = 256  # limits.batch_messages in the profile (default 4096: more than this mailbox)
# On one connection the Maildir sink has two batches in flight, which share
# batch_messages; the copy goes newest first in slices of four batches.
ONE_CONN_BATCH = BATCH // 2
SLICE = 4 * ONE_CONN_BATCH


class BasicMigration(MigrationCase):
    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot()
        cls.dv.start()
        cls.seeded = seed.seed_user(cls.dv, "alice", generated=1200)
        if cls.seeded.problems:
            raise AssertionError("seeding: %s" % cls.seeded.problems)

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def profile(self, limits=None, **kwargs):
        return self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])],
                                       limits=dict({"batch_messages": BATCH}, **(limits or {})),
                                       **kwargs)

    def test_fidelity_idempotence_and_new_mail(self):
        self.profile()
        first = self.work.run()
        self.assertRun(first, 0)
        source, sink = self.assertSinkEqualsSource(self.dv, "alice", ALICE)
        total = source.count()
        self.assertEqual(self.seeded.manifest.count(), total)
        # Every non-ASCII, spaced, '&' and dotted folder name made it, nested as at the source.
        for name in ("Ärger/Überfällig", "日本語", "R&D/Tom & Jerry", "Dotted.Name",
                     "Projects/Q1 Planning/Deep Nest", "Empty Folder", "Archive/2019"):
            self.assertIn(name, sink)

        report = self.work.report_of(first.stdout)
        box = mailbox_of(report, ALICE)
        self.assertEqual("completed", box["status"])
        self.assertIsNone(box["error"])
        self.assertEqual(2, box["connections"], "copied on two lanes (the default)")
        self.assertEqual(total, box["migrated"])
        self.assertEqual(total, box["found"])
        self.assertEqual(0, box["already_present"] + box["failed"] + box["skipped_over_cap"])
        self.assertEqual(source.total_bytes(), box["bytes"])
        by_name = {f["source"]: f for f in box["folders"]}
        self.assertEqual(".Ärger.Überfällig", by_name["Ärger/Überfällig"]["sink_folder"])
        self.assertEqual(".Dotted\\2eName", by_name["Dotted.Name"]["sink_folder"])
        self.assertEqual("INBOX", by_name["INBOX"]["sink_folder"])
        for name, msgs in source.items():
            if name not in source.noselect:
                self.assertEqual(len(msgs), by_name[name]["found"], name)
                self.assertEqual(len(msgs), by_name[name]["migrated"], name)
        self.assertEqual(total, report["totals"]["migrated"])
        self.assertEqual(1, report["totals"]["completed"])
        self.assertIn("messages:  %d migrated, 0 already present, 0 failed" % total,
                      first.stdout)

        # Re-running copies nothing.
        again = self.work.run()
        self.assertRun(again, 0)
        box = mailbox_of(self.work.report_of(again.stdout), ALICE)
        self.assertEqual((0, total), (box["migrated"], box["already_present"]))
        self.assertEqual(total, read_sink(self.work.maildir(ALICE)).count())

        # Ten new messages at the source: exactly those ten are copied.
        client = self.dv.imap("alice")
        try:
            fresh = mailgen.generate(10, seed=4242)
            seed.append_messages(client, "INBOX", fresh[:6])
            seed.append_messages(client, "Projects/Q1 Planning", fresh[6:])
        finally:
            client.logout()
        third = self.work.run()
        self.assertRun(third, 0)
        box = mailbox_of(self.work.report_of(third.stdout), ALICE)
        self.assertEqual((10, total), (box["migrated"], box["already_present"]))
        source, sink = self.assertSinkEqualsSource(self.dv, "alice", ALICE)
        self.assertEqual(total + 10, sink.count())
        self.assertEqual(0, self.work.pending_count())

    def run_on_connections(self, connections):
        """Migrate on @connections lanes; the done rows in arrival order."""
        self.profile(limits={"connections_per_mailbox": connections})
        proc = self.work.run()
        self.assertRun(proc, 0)
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        self.assertEqual(connections, box["connections"])
        return self.work.done_rows(ALICE)

    def assertNewestFirstInSlices(self, rows, window, what):
        # Copying goes in date slices (fetched folder by folder), committed in
        # batches that group a folder's messages: whatever arrives a slice and a
        # batch (window) or more places later is never newer.
        dates = [r[2] for r in rows]
        later_max = [0] * (len(rows) + 1)
        for i in range(len(rows) - 1, -1, -1):
            later_max[i] = max(dates[i], later_max[i + 1])
        out_of_order = [(rows[i], later_max[i + window]) for i in range(len(rows) - window)
                        if later_max[i + window] > dates[i]]
        self.assertEqual([], out_of_order[:5], what)

    def test_newest_first_across_folders(self):
        # One connection: newest first over the whole mailbox.
        rows = self.run_on_connections(1)
        self.assertGreaterEqual(len(rows), self.seeded.manifest.count())
        self.assertGreater(len(rows), 2 * SLICE, "the mailbox must span several slices")
        self.assertNewestFirstInSlices(rows, SLICE + ONE_CONN_BATCH, "the mailbox")
        dates = [r[2] for r in rows]
        # ...and the slices are real: the first slice holds the SLICE newest messages,
        self.assertEqual(sorted(dates, reverse=True)[:SLICE],
                         sorted(dates[:SLICE], reverse=True))
        # and folders are visited once per slice: not one folder after the other,
        # nor once per batch (each visit costs the source a SELECT).
        folders = len({r[0] for r in rows})
        runs = 1 + sum(1 for i in range(1, len(rows)) if rows[i][0] != rows[i - 1][0])
        slices = -(-len(rows) // SLICE)
        self.assertGreater(runs, folders)
        self.assertLessEqual(runs, slices * folders)
        # The state records the hash of exactly what the sink holds.
        sink = read_sink(self.work.maildir(ALICE))
        self.assertEqual(sorted(sink.hashes().elements()), sorted(r[3] for r in rows))

    def test_lanes_go_newest_first_each(self):
        # Two connections (the default): each folder belongs to one lane, and each
        # lane goes newest first, so every folder does; both lanes commit as they go.
        rows = self.run_on_connections(2)
        by_folder = {}
        for row in rows:
            by_folder.setdefault(row[0], []).append(row)
        for folder, folder_rows in by_folder.items():
            # A lane's folder comes newest first within each slice, and slices
            # newest first: only a batch's UID order (two lanes, two batches in
            # flight each: BATCH / 4 messages) stands between it and strictly.
            self.assertNewestFirstInSlices(folder_rows, BATCH // 4, folder)
        self.assertSinkEqualsSource(self.dv, "alice", ALICE)

    def test_dry_run_is_separate_from_the_real_run(self):
        self.profile()
        proc = subprocess.run([godwit_bin(), "run", self.work.profile, "--dry-run",
                               "--plugin-path", plugin_dir()], cwd=self.work.path,
                              capture_output=True, text=True, timeout=600)
        self.assertRun(proc, 0)
        report = self.work.report_of(proc.stdout)
        self.assertTrue(report["dry_run"])
        total = mailbox_of(report, ALICE)["migrated"]
        self.assertGreater(total, BATCH)
        dry = read_sink(os.path.join(self.work.path, "dry-run", "e2e", ALICE))
        self.assertEqual(total, dry.count())
        self.assertFalse(os.path.exists(self.work.maildir(ALICE)), "the real sink is untouched")
        self.assertFalse(os.path.exists(self.work.state), "the real state is untouched")
        # The real run then copies everything: the dry run counts for nothing.
        real = self.work.run()
        self.assertRun(real, 0)
        report = self.work.report_of(real.stdout)
        self.assertFalse(report["dry_run"])
        self.assertEqual((total, 0), (mailbox_of(report, ALICE)["migrated"],
                                      mailbox_of(report, ALICE)["already_present"]))

    def test_folder_rules(self):
        self.profile(folders={"exclude": ["Junk", "Archive/*", "\\Trash"],
                              "map": {"Projects/*": "Work/*", "R&D": "Research"}})
        proc = self.work.run()
        self.assertRun(proc, 0)
        sink = read_sink(self.work.maildir(ALICE))
        for gone in ("Junk", "Trash", "Archive/2019", "Archive/2020", "Projects/Q1 Planning"):
            self.assertNotIn(gone, sink)
        self.assertIn("Work/Q1 Planning/Deep Nest", sink)
        self.assertIn("Research", sink)
        # "R&D/Tom & Jerry" is not matched by the exact rule "R&D": it keeps its name.
        self.assertIn("R&D/Tom & Jerry", sink)
        client = self.dv.imap("alice")
        try:
            source = verify.read_server(client)
        finally:
            client.logout()
        mapping = {}
        for name in source:
            if name in ("Junk", "Trash") or name.startswith("Archive/"):
                mapping[name] = None
            elif name.startswith("Projects/"):
                mapping[name] = "Work/" + name[len("Projects/"):]
            elif name == "R&D":
                mapping[name] = "Research"
        diffs = verify.compare(source, sink, folder_map=mapping,
                               ignore_folders=("Projects", "Archive"))
        self.assertEqual([], diffs, verify.format_differences(diffs))


class DotSeparatorServer(MigrationCase):
    """A server whose hierarchy delimiter is '.', where '/' may appear inside a name."""

    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot(separator=".")
        cls.dv.start()
        cls.seeded = seed.seed_user(cls.dv, "alice", generated=40, corpus=False)
        if cls.seeded.problems:
            raise AssertionError("seeding: %s" % cls.seeded.problems)

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def test_tree_with_dot_delimiter(self):
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])])
        proc = self.work.run()
        self.assertRun(proc, 0)
        # Sink components are joined with '.' here, so "Slash/Name" stays one name.
        source, sink = self.assertSinkEqualsSource(self.dv, "alice", ALICE)
        self.assertEqual(self.seeded.manifest.count(), sink.count())
        self.assertIn("Slash/Name", sink)
        self.assertIn("Projects.Q1 Planning.Deep Nest", sink)
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        by_name = {f["source"]: f for f in box["folders"]}
        self.assertEqual(".Slash\\2fName", by_name["Slash/Name"]["sink_folder"])


if __name__ == "__main__":
    unittest.main()
