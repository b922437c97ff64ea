"""End to end: an IMAP source whose personal namespace has a prefix.

A Courier-style Dovecot ("." as delimiter, every personal folder under
"INBOX.") is migrated into the maildir sink and into the imap sink on a "/"
Dovecot without prefix. The source plugin reports its folders without the
prefix (plugins/source-imap/README.md), so the destination tree is the
source's tree without "INBOX." (INBOX itself stays INBOX), not everything
nested under INBOX; special-use roles come along.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import (MigrationCase, dovecot, mailbox_of, read_sink,  # noqa: E402
                             seed, verify)

ALICE = "alice@example.org"
PREFIX = "INBOX."


def without_prefix(name):
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def fullwidth(ch):
    return chr(0xFEE0 + ord(ch))


def on_slash_server(name):
    """The imap sink's rule (plugins/sink-imap/README.md): components joined with "/",
    a "/" inside a component becomes U+FF0F."""
    parts = without_prefix(name).split(".")
    return "/".join(p.replace("/", fullwidth("/")) for p in parts)


class PrefixedSource(MigrationCase):

    @classmethod
    def setUpClass(cls):
        cls.src = dovecot.Dovecot(separator=".", prefix=PREFIX)
        cls.dst = dovecot.Dovecot()
        for dv in (cls.src, cls.dst):
            dv.start()
        seeded = seed.seed_user(cls.src, "alice", generated=60, corpus=False)
        if seeded.problems:
            raise AssertionError("seeding: %s" % seeded.problems)
        cls.total = seeded.manifest.count()
        client = cls.src.imap("alice")
        try:
            cls.source = verify.read_server(client)
        finally:
            client.logout()

    @classmethod
    def tearDownClass(cls):
        for dv in (cls.src, cls.dst):
            dv.stop()

    def test_source_tree_really_has_the_prefix(self):
        names = set(self.source)
        self.assertIn("INBOX", names)
        self.assertIn("INBOX.Sent", names)
        self.assertIn("INBOX.Projects.Q1 Planning", names)
        self.assertEqual({"INBOX"}, {n for n in names if not n.startswith(PREFIX)})

    def test_into_maildir_without_the_prefix(self):
        self.work.write_profile(self.src, [(ALICE, "alice", self.src.users["alice"])])
        proc = self.work.run()
        self.assertRun(proc, 0)
        sink = read_sink(self.work.maildir(ALICE), ".")
        diffs = verify.compare(self.source, sink, folder_map=without_prefix)
        self.assertEqual([], diffs, verify.format_differences(diffs))
        self.assertEqual(self.total, sink.count())
        self.assertIn("Sent", sink)
        self.assertIn("Projects.Q1 Planning", sink)
        self.assertFalse([n for n in sink if n.startswith(PREFIX)])
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        by_name = {f["source"]: f for f in box["folders"]}
        self.assertEqual(".Sent", by_name["Sent"]["sink_folder"])
        self.assertEqual(".Projects.Q1 Planning", by_name["Projects.Q1 Planning"]["sink_folder"])
        self.assertEqual("INBOX", by_name["INBOX"]["source"])
        # A re-run finds every folder again under the same (prefix-less) names.
        again = self.work.run()
        self.assertRun(again, 0)
        box = mailbox_of(self.work.report_of(again.stdout), ALICE)
        self.assertEqual((0, self.total), (box["migrated"], box["already_present"]))

    def test_into_imap_without_the_prefix(self):
        self.work.write_profile(self.src, [(ALICE, "alice", self.src.users["alice"])])
        csv = os.path.join(self.work.path, "users.csv")
        with open(csv, "w", encoding="utf-8") as f:
            f.write("EmailAddress,UserName,Password,TargetUserName,TargetPassword\n")
            f.write("%s,alice,%s,bob,%s\n" % (ALICE, self.src.users["alice"],
                                              self.dst.users["bob"]))
        self.write_imap_profile(csv)
        proc = self.work.run()
        self.assertRun(proc, 0)
        client = self.dst.imap("bob")
        try:
            dest = verify.read_server(client)
        finally:
            client.logout()
        diffs = verify.compare(self.source, dest, folder_map=on_slash_server)
        self.assertEqual([], diffs, verify.format_differences(diffs))
        self.assertEqual(self.total, dest.count())
        self.assertIn("Projects/Q1 Planning", dest)
        self.assertFalse([n for n in dest if n.startswith("INBOX/")])
        # The \Sent folder landed in the destination's \Sent folder.
        self.assertEqual("\\Sent", dest.special_use.get("Sent"))
        self.assertEqual(len(self.source["INBOX.Sent"]), len(dest["Sent"]))

    def write_imap_profile(self, csv):
        def side(dv):
            return ["      host: %s" % dv.host, "      port: %d" % dv.port_tls,
                    "      tls: implicit", "      ca_file: %s" % json.dumps(dv.ca_file)]
        lines = ["version: 1", "state: %s" % json.dumps(self.work.state),
                 "report: %s" % json.dumps(self.work.reports), "pipelines:",
                 "  - name: prefixed", "    source:", "      plugin: imap"] + side(self.src)
        lines += ["    sink:", "      plugin: imap"] + side(self.dst)
        lines += ["    mailboxes:", "      csv: %s" % json.dumps(csv)]
        with open(self.work.profile, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    unittest.main()
