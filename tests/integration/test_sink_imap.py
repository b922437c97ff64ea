"""End to end: the `imap` sink, real Dovecot on both sides.

alice -> bob on one instance ("/" delimiter), and a "/" instance -> a "."
instance with the Courier-style prefix "INBOX.": every message byte-identical
(what the destination serves for BODY[] has the SHA-256 of what the source
serves), flags and INTERNALDATE (with its zone) equal, the folder tree equal
under the documented mapping (plugins/sink-imap/README.md), APPENDUIDs
recorded in the state and pointing at exactly those bytes; a re-run copies
nothing; SIGKILL during a run then a re-run: no loss, no duplicate; a
destination APPENDLIMIT below some messages: exactly those are reported and
never sent; a folder name holding the destination delimiter survives.

Both instances store with mail_save_crlf = no, Dovecot's default: Dovecot
serves every line with CRLF whatever it stored, so the source serves CRLF
bytes, the sink appends exactly those, and the destination serves them back
unchanged. (With mail_save_crlf = yes on the source only, the comparison
would be the same; bare CRs inside a line are not touched by either side.)
"""

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import (dovecot, godwit_bin, imapio, mailbox_of, mailgen,  # noqa: E402
                             pending_in_state, plugin_dir, seed, verify, wait_until)
from harness import mutf7  # noqa: E402  (migrate_helpers put tests/ on the path)

mutf7_encode = mutf7.encode

ALICE = "alice@example.org"
ZONED_DATE = '"17-Jul-1996 02:44:25 -0700"'
ZONED_MESSAGE = (b"From: zone@example.org\r\nTo: alice@example.org\r\nSubject: zoned\r\n"
                 b"Message-ID: <zoned@example.org>\r\n\r\nwritten at -0700\r\n")

# Dovecot refuses messages over 60,000 bytes but does not announce APPENDLIMIT.
QUIET_LIMIT = """mail_plugins = $mail_plugins quota
plugin {
  quota = count:User quota
  quota_vsizes = yes
  quota_max_mail_size = 60000
}"""


def fullwidth(ch):
    return chr(0xFEE0 + ord(ch))


def mapped_name(name, src_delim, dst_delim, prefix):
    """README.md's rule: INBOX stays INBOX; other paths go under the destination's
    prefix, joined with its delimiter; a destination delimiter inside a component
    becomes its fullwidth form (U+FF0E for ".", U+FF0F for "/")."""
    if name.upper() == "INBOX":
        return "INBOX"
    parts = name.split(src_delim)
    return prefix + dst_delim.join(p.replace(dst_delim, fullwidth(dst_delim)) for p in parts)


class Run:
    """A profile migrating one source user into one destination user."""

    def __init__(self, src, src_user, dst, dst_user, pipeline_depth=16, connections=None):
        self.dir = tempfile.mkdtemp(prefix="godwit-sink-imap-")
        self.state = os.path.join(self.dir, "state.db")
        self.profile = os.path.join(self.dir, "profile.yaml")
        csv = os.path.join(self.dir, "users.csv")
        with open(csv, "w", encoding="utf-8") as f:
            f.write("EmailAddress,UserName,Password,TargetUserName,TargetPassword\n")
            f.write("%s,%s,%s,%s,%s\n" % (ALICE, src_user, src.users[src_user], dst_user,
                                          dst.users[dst_user]))
        side = lambda dv: ["      host: %s" % dv.host, "      port: %d" % dv.port_tls,
                           "      tls: implicit", "      ca_file: %s" % json.dumps(dv.ca_file)]
        lines = ["version: 1", "state: %s" % json.dumps(self.state),
                 "report: %s" % json.dumps(os.path.join(self.dir, "reports")),
                 "pipelines:", "  - name: i2i", "    source:", "      plugin: imap"]
        lines += side(src)
        lines += ["    sink:", "      plugin: imap"] + side(dst)
        lines += ["      pipeline_depth: %d" % pipeline_depth,
                  "    mailboxes:", "      csv: %s" % json.dumps(csv)]
        if connections is not None:
            lines += ["    limits:", "      connections_per_mailbox: %d" % connections]
        with open(self.profile, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def argv(self):
        return [godwit_bin(), "run", self.profile, "--plugin-path", plugin_dir()]

    def run(self, *extra):
        return subprocess.run(self.argv() + list(extra), capture_output=True, text=True,
                              timeout=600)

    def start(self):
        return subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def report(self, stdout):
        for line in stdout.splitlines():
            if line.strip().startswith("report:") and line.strip().endswith(".json"):
                with open(line.split()[-1], encoding="utf-8") as f:
                    return json.load(f)
        raise AssertionError("no report path in:\n" + stdout)

    def rows(self, status="done"):
        if not os.path.exists(self.state):
            return []
        try:
            con = sqlite3.connect("file:%s?mode=ro" % self.state, uri=True, timeout=10)
            try:
                if status == "pending":
                    return [(folder, uid, None, None, None)
                            for _p, _m, folder, uid in pending_in_state(con)]
                return con.execute("SELECT folder, uid, sink_folder, sink_id, sha256 FROM "
                                   "messages_by_name WHERE status = ?", (status,)).fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError:
            return []  # schema not there yet

    def cleanup(self):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)


def manifest(dv, user):
    client = dv.imap(user)
    try:
        return verify.read_server(client)
    finally:
        client.logout()


def uid_hashes(dv, user, folders):
    """{(folder, uid): sha256} of the destination, folder names UTF-8."""
    out = {}
    client = dv.imap(user)
    try:
        for name in folders:
            for m in imapio.fetch_folder(client, mutf7_encode(name)):
                out[(name, m.uid)] = m.sha256
    finally:
        client.logout()
    return out


def raw_internaldates(dv, user, folder):
    client = dv.imap(user)
    try:
        client.select(imapio.quote(mutf7_encode(folder)), readonly=True)
        typ, data = client.uid("FETCH", "1:*", "(INTERNALDATE)")
        return [re.search(r'INTERNALDATE "([^"]+)"', d.decode()).group(1) for d in data if d]
    finally:
        client.logout()


def fetched_bodies(dv, user, log_start):
    """Message bodies Dovecot served to @user's sessions that logged out since the log
    had @log_start characters (its "Logged out ... body_count=N" lines)."""
    pattern = re.compile(r"imap\(%s\)<[^>]*><[^>]*>: Info: Disconnected: Logged out .* "
                         r"body_count=(\d+)" % re.escape(user))
    counts = wait_until(lambda: [int(n) for n in pattern.findall(dv.log_text()[log_start:])],
                        10, 0.05)
    if not counts:
        raise AssertionError("no logout of %s in the Dovecot log" % user)
    return sum(counts)


class SinkCase(unittest.TestCase):
    maxDiff = None

    def new_run(self, *args, **kwargs):
        run = Run(*args, **kwargs)
        self.addCleanup(run.cleanup)
        return run

    def assertRun(self, proc, code):
        self.assertEqual(code, proc.returncode, "godwit exited %s\nstdout:\n%s\nstderr:\n%s"
                         % (proc.returncode, proc.stdout, proc.stderr[-6000:]))

    def assertSameMail(self, src_dv, dst_dv, dst_user, mapping):
        source = manifest(src_dv, "alice")
        dest = manifest(dst_dv, dst_user)
        diffs = verify.compare(source, dest, folder_map=mapping)
        self.assertEqual([], diffs, verify.format_differences(diffs))
        self.assertEqual([], dest.stray)
        self.assertEqual(source.count(), dest.count())
        return source, dest

    def assertAppendUidsRecorded(self, run, dst_dv, dst_user, expected_count):
        rows = run.rows()
        self.assertEqual(expected_count, len(rows))
        dest = uid_hashes(dst_dv, dst_user, sorted({r[2] for r in rows}))
        seen = set()
        for folder, uid, sink_folder, sink_id, sha in rows:
            validity, _, dest_uid = sink_id.partition(":")
            self.assertTrue(validity.isdigit() and dest_uid.isdigit(), sink_id)
            key = (sink_folder, int(dest_uid))
            self.assertNotIn(key, seen, "two messages recorded at %s" % (key,))
            seen.add(key)
            self.assertEqual(sha, dest.get(key), "%s uid %d -> %s %s" % (folder, uid, sink_folder,
                                                                        sink_id))
        self.assertEqual(set(dest), seen, "destination messages without a state row")


class SameInstance(SinkCase):
    """alice -> bob (and -> carol) on one Dovecot with "/" as delimiter."""

    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot(users={"alice": "Alice-pw-1", "bob": "Bob-pw-2",
                                        "carol": "Carol-pw-3"})
        cls.dv.start()
        seeded = seed.seed_user(cls.dv, "alice", generated=400)
        if seeded.problems:
            raise AssertionError("seeding: %s" % seeded.problems)
        client = cls.dv.imap("alice")
        try:
            typ, data = client.append("INBOX", "(\\Seen $Label1)", ZONED_DATE, ZONED_MESSAGE)
            assert typ == "OK", data
        finally:
            client.logout()
        cls.total = seeded.manifest.count() + 1

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def test_migrate_then_rerun_copies_nothing(self):
        run = self.new_run(self.dv, "alice", self.dv, "bob")
        first = run.run()
        self.assertRun(first, 0)
        box = mailbox_of(run.report(first.stdout), ALICE)
        self.assertEqual(("completed", self.total, 0), (box["status"], box["migrated"],
                                                        box["failed"]))
        self.assertEqual([], box["collisions"])
        identity = lambda name: name
        self.assertSameMail(self.dv, self.dv, "bob", identity)
        # INTERNALDATE as served, text for text. (Dovecot's Maildir keeps the instant
        # only, and serves it in its own zone; that the sink writes the source's zone
        # is asserted by tests/unit/test_imap_append.c.)
        self.assertEqual(sorted(raw_internaldates(self.dv, "alice", "INBOX")),
                         sorted(raw_internaldates(self.dv, "bob", "INBOX")))
        self.assertIn("Dotted.Name", manifest(self.dv, "bob"))
        self.assertAppendUidsRecorded(run, self.dv, "bob", self.total)

        again = run.run()
        self.assertRun(again, 0)
        box = mailbox_of(run.report(again.stdout), ALICE)
        self.assertEqual((0, self.total), (box["migrated"], box["already_present"]))
        self.assertEqual(self.total, manifest(self.dv, "bob").count())

    def test_sigkill_then_rerun_no_loss_no_duplicate(self):
        run = self.new_run(self.dv, "alice", self.dv, "carol")
        carol_root = self.dv.maildir_of("carol")

        def in_destination():
            n = 0
            for dirpath, _dirs, files in os.walk(carol_root):
                if os.path.basename(dirpath) in ("cur", "new"):
                    n += len(files)
            return n

        # Killed while at least 100 messages are in the destination, 10 or more of them
        # not yet committed (the whole mailbox is one batch: usually none is).
        proc = run.start()
        reached = wait_until(lambda: proc.poll() is not None or (
            in_destination() >= max(100, len(run.rows()) + 10)), 180, 0.002)
        running = proc.poll() is None
        if running:
            os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        self.assertTrue(reached and running, "the run ended before the kill\n" + err[-3000:])
        pending = len(run.rows("pending"))
        self.assertGreater(pending, 0)
        self.assertGreater(in_destination(), len(run.rows()))

        final = run.run()
        self.assertRun(final, 0)
        box = mailbox_of(run.report(final.stdout), ALICE)
        self.assertEqual("completed", box["status"])
        self.assertEqual(self.total, box["migrated"] + box["already_present"])
        resolved = re.findall(r"(\d+) message\(s\) in flight when an earlier run stopped: "
                              r"(\d+) found in the sink", final.stderr)
        self.assertEqual(pending, sum(int(n) for n, _found in resolved))
        self.assertGreater(sum(int(found) for _n, found in resolved), 0)
        self.assertEqual([], run.rows("pending"))
        self.assertSameMail(self.dv, self.dv, "carol", lambda name: name)  # duplicates too
        self.assertAppendUidsRecorded(run, self.dv, "carol", self.total)


class ToCourierStyle(SinkCase):
    """A "/" Dovecot -> a "." Dovecot whose personal namespace is "INBOX."."""

    @classmethod
    def setUpClass(cls):
        cls.src = dovecot.Dovecot(users=dict(dovecot.DEFAULT_USERS, mallory="Mallory-pw-9"))
        cls.dst = dovecot.Dovecot(separator=".", prefix="INBOX.")
        cls.limited = dovecot.Dovecot(append_limit=60_000)
        cls.quiet_limit = dovecot.Dovecot(extra_config=QUIET_LIMIT,
                                          users=dict(dovecot.DEFAULT_USERS, trent="Trent-pw-9"))
        for dv in (cls.src, cls.dst, cls.limited, cls.quiet_limit):
            dv.start()
        seeded = seed.seed_user(cls.src, "alice", generated=150)
        if seeded.problems:
            raise AssertionError("seeding: %s" % seeded.problems)
        cls.total = seeded.manifest.count()

    @classmethod
    def tearDownClass(cls):
        for dv in (cls.src, cls.dst, cls.limited, cls.quiet_limit):
            dv.stop()

    def test_folders_mapped_bytes_identical(self):
        run = self.new_run(self.src, "alice", self.dst, "bob", pipeline_depth=4)
        proc = run.run()
        self.assertRun(proc, 0)
        mapping = lambda name: mapped_name(name, "/", ".", "INBOX.")
        source, dest = self.assertSameMail(self.src, self.dst, "bob", mapping)
        # The folder whose name holds the destination's delimiter kept it, as U+FF0E.
        self.assertIn("Dotted.Name", source)
        self.assertIn("INBOX.Dotted\uff0eName", dest)
        self.assertEqual(len(source["Dotted.Name"]), len(dest["INBOX.Dotted\uff0eName"]))
        self.assertIn("INBOX.Projects.Q1 Planning.Deep Nest", dest)
        # Roles land on the destination's special-use folders.
        self.assertEqual("\\Sent", dest.special_use.get("INBOX.Sent"))
        self.assertAppendUidsRecorded(run, self.dst, "bob", self.total)

    def test_appendlimit_messages_skipped_not_sent(self):
        run = self.new_run(self.src, "alice", self.limited, "bob")
        log_start = len(self.src.log_text())
        proc = run.run()
        fetched = fetched_bodies(self.src, "alice", log_start)  # before anyone else logs in
        source = manifest(self.src, "alice")
        too_big = {(f, m["uid"]) for f, msgs in source.items() for m in msgs
                   if m["size"] > 60_000}
        self.assertGreater(len(too_big), 0, "the seed has no message over 60,000 bytes")
        self.assertRun(proc, 0)  # skips are not failures
        box = mailbox_of(run.report(proc.stdout), ALICE)
        self.assertEqual(("completed", 0, len(too_big)),
                         (box["status"], box["failed"], box["skipped_too_large"]))
        self.assertEqual([], [x for f in box["folders"] for x in f["failures"]])
        skipped = {(f["source"], x["uid"]): x for f in box["folders"] for x in f["skipped"]}
        self.assertEqual(too_big, set(skipped))
        for (folder, uid), entry in skipped.items():
            size = next(m["size"] for m in source[folder] if m["uid"] == uid)
            self.assertEqual({"uid": uid, "reason": "too large", "size": size, "limit": 60000,
                              "limit_by": "destination APPENDLIMIT 60000"}, entry)
        self.assertEqual(self.total - len(too_big), box["migrated"])
        self.assertIn("skipped:   %d (%d too large, 0 over cap, 0 filtered)"
                      % (len(too_big), len(too_big)), proc.stdout)
        dest = manifest(self.limited, "bob")
        expected = verify.Manifest(source.delimiter)
        for folder, msgs in source.items():
            expected[folder] = [m for m in msgs if (folder, m["uid"]) not in too_big]
        expected.noselect = source.noselect
        diffs = verify.compare(expected, dest, folder_map=lambda name: name)
        self.assertEqual([], diffs, verify.format_differences(diffs))
        # Nothing over the limit was even fetched from the source: Dovecot counts the
        # bodies it served per session when the run logs out.
        self.assertEqual(self.total - len(too_big), fetched)

    def test_late_refusals_are_failures_of_their_own(self):
        """A destination that enforces a size limit without announcing it (Dovecot's
        quota_max_mail_size without APPENDLIMIT): the refusals arrive after the
        pipelined APPENDs went out; exactly those messages fail, with the server's
        text, in the first attempt, and everything else is committed."""
        run = self.new_run(self.src, "alice", self.quiet_limit, "bob", pipeline_depth=16)
        proc = run.run()
        source = manifest(self.src, "alice")
        too_big = {(f, m["uid"]) for f, msgs in source.items() for m in msgs
                   if m["size"] > 60_000}
        self.assertGreater(len(too_big), 0)
        self.assertRun(proc, 1)  # partial: some messages could not be copied
        box = mailbox_of(run.report(proc.stdout), ALICE)
        self.assertEqual(("partial", 1, len(too_big), 0),
                         (box["status"], box["attempts"], box["failed"],
                          box["skipped_too_large"]))
        failures = {(f["source"], x["uid"]): x["reason"] for f in box["folders"]
                    for x in f["failures"]}
        self.assertEqual(too_big, set(failures))
        for reason in failures.values():
            self.assertRegex(reason, r"^sink imap: the destination refused the message: Mail "
                             r"size is larger than the maximum size allowed by server "
                             r"configuration( \(.* secs\)\.)?$")
        self.assertEqual(self.total - len(too_big), box["migrated"])
        self.assertEqual(self.total - len(too_big), len(run.rows()))
        self.assertEqual([], run.rows("pending"))
        self.assertNotIn("retried one at a time", proc.stderr)
        # Each refusal is one console line naming its own folder and UID, and no other
        # folder: it is read late, while another folder may be current.
        warned = [l for l in proc.stderr.splitlines() if "the destination refused" in l]
        self.assertEqual(len(too_big), len(warned), "\n".join(warned))
        for folder, uid in too_big:
            self.assertEqual(1, sum(("%s: folder %s uid %d: " % (ALICE, folder, uid)) in l
                                    for l in warned), (folder, uid, warned))
        dest = manifest(self.quiet_limit, "bob")
        expected = verify.Manifest(source.delimiter)
        for folder, msgs in source.items():
            expected[folder] = [m for m in msgs if (folder, m["uid"]) not in too_big]
        expected.noselect = source.noselect
        diffs = verify.compare(expected, dest, folder_map=lambda name: name)
        self.assertEqual([], diffs, verify.format_differences(diffs))

    def test_refused_message_inside_multiappend_leaves_no_text_read_as_commands(self):
        """Into Dovecot every message of a MULTIAPPEND goes out without waiting for
        "+" (plugins/sink-imap/README.md). Dovecot refuses the messages over its size
        limit in the middle of such commands and reads each command on to its end: the
        messages after a refused one, whose every line is an IMAP command, are never
        executed, each arrives once (its command is sent again one message at a time),
        and only the refused messages fail."""
        # 9 MB: more than twice the copies the client keeps before it opens a
        # command (4 MiB), so answers are read, and refused commands sent again, while
        # later commands are being written.
        messages, refused = [], set()
        for i in range(160):
            if i % 4 == 1:  # a refused message in every group, never the last
                data = mailgen.message_of_size(70_000, seed=i)
                refused.add(hashlib.sha256(data).hexdigest())
            else:  # each line a command that would create a folder; under the limit
                lines = b"".join(b"h%d.%d CREATE Injected%d-%d\r\n" % (i, n, i, n)
                                 for n in range(1600))
                data = b"Subject: commands %d\r\n\r\n" % i + lines
                self.assertLess(len(data), 60_000)
            # Newest first: the order of the UIDs, so refused ones sit inside groups.
            messages.append(mailgen.GenMessage("hostile/%d" % i, data,
                                               1_700_000_000 - i * 3600, ()))
        client = self.src.imap("mallory")
        try:
            seed.append_messages(client, "INBOX", messages)
        finally:
            client.logout()
        run = self.new_run(self.src, "mallory", self.quiet_limit, "trent", pipeline_depth=16)
        proc = run.run("--log-level", "debug")
        self.assertRun(proc, 1)  # partial: the refused messages
        # The case under test happened: commands sent ahead, refused as a whole.
        self.assertIn("MULTIAPPEND to 127.0.0.1: every message without waiting (Dovecot)",
                      proc.stderr)
        self.assertRegex(proc.stderr, r"MULTIAPPEND of \d+ message\(s\) refused")
        dest = manifest(self.quiet_limit, "trent")
        self.assertEqual([], [f for f in dest if "Injected" in f])
        box = mailbox_of(run.report(proc.stdout), ALICE)
        self.assertEqual((len(messages) - len(refused), len(refused)),
                         (box["migrated"], box["failed"]))
        sent = sorted(m.sha256 for m in messages if m.sha256 not in refused)
        self.assertEqual(sent, sorted(m["sha256"] for m in dest["INBOX"]))


def message_without_id(tag, size):
    """A CRLF message without a Message-ID header, exactly @size bytes, body of @tag."""
    head = b"From: dup@example.org\r\nTo: alice@example.org\r\nSubject: no id\r\n\r\n"
    body = (tag.encode() * size)[:size - len(head) - 2] + b"\r\n"
    return head + body


class CrashResolution(SinkCase):
    """Messages the destination received before a run died uncommitted are found
    again by what proves them (Message-ID and size, else the bytes), and byte-
    identical copies are told apart: each source message gets a destination copy
    of its own."""

    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot(users={"dave": "Dave-pw-4", "erin": "Erin-pw-5",
                                        "frank": "Frank-pw-6", "gina": "Gina-pw-7"})
        cls.dv.start()

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def seed(self, user, folder, messages):
        client = self.dv.imap(user)
        try:
            if folder != "INBOX":
                client.create(imapio.quote(mutf7_encode(folder)))
            return seed.append_messages(client, folder, messages)
        finally:
            client.logout()

    def dest_folder(self, user, folder):
        return manifest(self.dv, user).get(folder, [])

    def test_identical_copies_killed_before_commit(self):
        # Two byte-identical messages and 900 others, all in one batch (one lane:
        # with two, the twins' folder would be a batch of its own). The run is
        # killed after the destination got both twins but before the batch was
        # committed: the test holds the state's write lock from the moment the
        # batch is marked pending (the whole batch's fetch and APPENDs away from
        # its commit), so the kill does not race the commit.
        twin = mailgen.message_of_size(4000, seed=41, date=1_700_000_000)
        self.seed("dave", "Twins", [mailgen.GenMessage("twin/%d" % i, twin, 1_700_000_000)
                                    for i in range(2)])
        self.seed("dave", "INBOX", mailgen.generate(900, seed=42, attachment_every=0))
        run = self.new_run(self.dv, "dave", self.dv, "erin", connections=1)
        twins_dir = os.path.join(self.dv.maildir_of("erin"), ".Twins")

        def twins_arrived():
            return sum(len(os.listdir(os.path.join(twins_dir, d))) for d in ("cur", "new")
                       if os.path.isdir(os.path.join(twins_dir, d)))

        def twins_pending():
            return len([r for r in run.rows("pending") if r[0] == "Twins"]) == 2

        proc = run.start()
        pending = wait_until(lambda: proc.poll() is not None or twins_pending(), 120, 0.002)
        lock = sqlite3.connect(run.state, timeout=30, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")  # godwit's commit of the batch now waits
            reached = wait_until(lambda: proc.poll() is not None or twins_arrived() >= 2,
                                 120, 0.002)
            running = proc.poll() is None
            if running:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
        finally:
            lock.close()
        self.assertTrue(pending and reached and running, "the run ended before the kill")
        self.assertEqual(2, twins_arrived())
        self.assertEqual([], [r for r in run.rows() if r[0] == "Twins"], "committed too early")
        self.assertEqual(2, len([r for r in run.rows("pending") if r[0] == "Twins"]))

        final = run.run()
        self.assertRun(final, 0)
        box = mailbox_of(run.report(final.stdout), ALICE)
        self.assertEqual(("completed", 0), (box["status"], box["failed"]))
        self.assertEqual(2, len(self.dest_folder("erin", "Twins")))
        twin_rows = [r for r in run.rows() if r[0] == "Twins"]
        self.assertEqual(2, len(twin_rows))
        self.assertEqual(2, len({r[3] for r in twin_rows}), "both recorded at one copy")
        self.assertSameMail_of("dave", "erin")
        self.assertAppendUidsRecorded(run, self.dv, "erin", 902)

    def assertSameMail_of(self, src_user, dst_user):
        source = manifest(self.dv, src_user)
        dest = manifest(self.dv, dst_user)
        diffs = verify.compare(source, dest, folder_map=lambda name: name)
        self.assertEqual([], diffs, verify.format_differences(diffs))

    def test_recorded_copy_is_not_taken_for_a_lost_one(self):
        """The state says a message was handed to the destination but not committed
        (pending), and the destination does not have it; it does have a byte-identical
        copy committed for another source message, and messages of the same size and
        date with other bytes (one of them not from this migration at all). None is
        taken for the lost one: it is copied again."""
        date = 1_600_000_000
        stranger = message_without_id("s", 2000)
        self.seed("gina", "INBOX", [mailgen.GenMessage("stranger", stranger, date)])
        with_id = mailgen.message_of_size(3000, seed=7, date=date)
        no_id = message_without_id("z", 2000)
        other_bytes = message_without_id("q", 2000)  # same size and date, other bytes
        messages = [mailgen.GenMessage("a", with_id, date), mailgen.GenMessage("b", with_id, date),
                    mailgen.GenMessage("c", no_id, date), mailgen.GenMessage("d", no_id, date),
                    mailgen.GenMessage("e", other_bytes, date),
                    mailgen.GenMessage("f", no_id[:-4] + b"!!\r\n", date)]
        uids = self.seed("frank", "INBOX", messages)
        run = self.new_run(self.dv, "frank", self.dv, "gina")
        self.assertRun(run.run(), 0)
        self.assertEqual(7, len(self.dest_folder("gina", "INBOX")))
        # Lose the copies of b, d and f: the destination never got them, the state
        # still has them pending.
        lost = {uids[1], uids[3], uids[5]}
        rows = {r[1]: r for r in run.rows()}
        dest_uids = [rows[uid][3].split(":")[1] for uid in sorted(lost)]
        client = self.dv.imap("gina")
        try:
            client.select("INBOX")
            client.uid("STORE", ",".join(dest_uids), "+FLAGS.SILENT", "(\\Deleted)")
            client.expunge()
        finally:
            client.logout()
        self.assertEqual(4, len(self.dest_folder("gina", "INBOX")))
        con = sqlite3.connect(run.state)
        try:
            con.executemany("UPDATE messages SET status = 'pending', sink_folder = NULL, "
                            "sink_id = NULL, sha256 = NULL, seq = NULL WHERE uid = ?",
                            [(uid,) for uid in lost])
            con.commit()
        finally:
            con.close()

        again = run.run()
        self.assertRun(again, 0)
        self.assertIn("3 message(s) in flight when an earlier run stopped: 0 found in the sink, "
                      "3 to copy again", again.stderr)
        box = mailbox_of(run.report(again.stdout), ALICE)
        self.assertEqual((3, 3), (box["migrated"], box["already_present"]))
        source = [m["sha256"] for m in self.dest_folder("frank", "INBOX")]
        dest = [m["sha256"] for m in self.dest_folder("gina", "INBOX")]
        self.assertEqual(sorted(source + [hashlib.sha256(stranger).hexdigest()]), sorted(dest))
        rows = run.rows()
        self.assertEqual(6, len(rows))
        self.assertEqual(6, len({r[3] for r in rows}), "two messages recorded at one copy")
        at = uid_hashes(self.dv, "gina", ["INBOX"])
        for _folder, _uid, sink_folder, sink_id, sha in rows:
            self.assertEqual(sha, at.get((sink_folder, int(sink_id.split(":")[1]))))

if __name__ == "__main__":
    unittest.main()
