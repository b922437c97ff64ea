"""End to end: a misbehaving server costs only what it breaks.

`godwit run` reads the harness's Dovecot through tests/fixtures/imap_fault_proxy.py,
which injects one fault per test: a refused message fetch, a connection cut
inside a message literal, a refused SELECT, hostile folder names in LIST, a
malformed FETCH response, a BYE in the middle of fetching. Each test checks
the exit code, that the report names mailbox, folder and UID with a clear
reason, that every other message arrived byte for byte and nothing twice,
and that a re-run without the fault copies exactly what was missing.
Throughout, the proxy checks that the client never breaks IMAP syntax (a
folder name with CR/LF sent in a quoted string runs commands on the server),
and the console never shows a line a folder name forged.
"""

import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fixtures"))

from imap_fault_proxy import FaultProxy, Faults  # noqa: E402
from migrate_helpers import (MigrationCase, dovecot, godwit_bin, mailbox_of, seed,  # noqa: E402
                             verify)

ALICE = "alice@example.org"
INJECTED = "injected fault"  # the text of the proxy's NO [UNAVAILABLE] (the code is not kept)
BODY_FAULT_AT = 5  # the N-th body the proxy forwards carries the connection fault

# Hostile names a server may list (all empty folders, served by the proxy).
# The expected sink folder ids follow plugins/sink-maildir/README.md, "Folder names".
LONG_NAME = "long-" + "x" * 295  # 300 bytes, one component
HOSTILE_LEGAL = ["../../escape", "a/../../b", ".", "..", "ctl\x01name\x7f", "tab\tname",
                 "esc\x1b[31mred", "~root", "back\\slash", LONG_NAME]
HOSTILE_ILLEGAL = ["/abs/escape", "trailing/", "double//slash"]
# Names that cannot travel in a quoted string at all. Sent quoted, the first one
# would make the server run "Z1 CREATE godwit-injected".
INJECTED_FOLDER = "godwit-injected"
HOSTILE_PROTOCOL = ["cr\r\nZ1 CREATE %s\r\nZ2 NOOP" % INJECTED_FOLDER, "lf\nonly",
                    "nul\x00name"]

FS_RESERVED = (b"cur", b"new", b"tmp", b"maildirfolder", b"subscriptions")


def _shorten(escaped, limit, keep=191):
    """README "Over-long names": cut (never inside an escape) and add ~<8 hex of SHA-256>."""
    if len(escaped) <= limit:
        return escaped
    cut = keep
    while cut > 0 and (b"\\" in escaped[max(0, cut - 2):cut] or
                       (cut < len(escaped) and (escaped[cut] & 0xC0) == 0x80)):
        cut -= 1
    return escaped[:cut] + b"~" + hashlib.sha256(escaped).hexdigest()[:8].encode()


def sink_component(component, layout):
    """One folder name component as the maildir sink stores it (README table)."""
    raw = component.encode("utf-8")
    out = bytearray()
    for i, b in enumerate(raw):
        escape = b in (0x5C, 0x2F) or b < 0x20 or b == 0x7F or (b == 0x7E and i == 0)
        if layout == "maildirpp" and b == 0x2E:
            escape = True
        out += b"\\%02x" % b if escape else bytes([b])
    out = bytes(out)
    if layout == "fs" and (raw in (b".", b"..") or raw in FS_RESERVED or
                           raw.startswith(b"dovecot") or raw.startswith(b"godwit-")):
        if not out.startswith(b"\\"):
            out = b"\\%02x" % raw[0] + out[1:]
    return _shorten(out, 200)


def sink_folder_id(name, layout):
    """The folder id the sink reports for a '/'-separated name (README "Layout")."""
    parts = [sink_component(c, layout) for c in name.split("/")]
    if layout == "maildirpp":
        return _shorten(b"." + b".".join(parts), 255, keep=246).decode("utf-8")
    return b"/".join(parts).decode("utf-8")


LOG_LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (debug|info|warn|error) "
                         r"[^\x00-\x08\x0a-\x1f\x7f]*$")


def forged_log_lines(stderr):
    """Console lines that are not whole log lines: a name with CR, LF or other control
    characters logged raw can fake lines or drive the terminal."""
    return [line for line in stderr.split("\n")[:-1] if not LOG_LINE_RE.match(line)]


def without(manifest, drop):
    """A copy of @manifest without the messages {(folder, uid)} in @drop."""
    out = verify.Manifest(manifest.delimiter)
    out.special_use = dict(manifest.special_use)
    out.noselect = set(manifest.noselect)
    for name, msgs in manifest.items():
        out[name] = [m for m in msgs if (name, m["uid"]) not in drop]
    return out


def tolerant_decoder(layout):
    """The sink's decoder; a shortened (undecodable) name becomes "<shortened:dir>"."""
    decode = verify.sink_maildir_decoder("/", "maildir++" if layout == "maildirpp" else "fs")

    def run(rel):
        try:
            return decode(rel)
        except ValueError:
            return "<shortened:%s>" % rel

    return run


class FaultCase(MigrationCase):
    SOURCE_PLUGIN = "imap"  # SerialSource below: the same faults through another build

    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot()
        cls.dv.start()
        try:
            seeded = seed.seed_user(cls.dv, "alice", generated=40, corpus=False, seed="faults",
                                    out=None)
            if seeded.problems:
                raise AssertionError("seeding: %s" % seeded.problems)
            client = cls.dv.imap("alice")
            try:
                cls.source = verify.read_server(client)
            finally:
                client.logout()
            cls.total = cls.source.count()
            cls.proxy = FaultProxy(cls.dv.host, cls.dv.port_plain)
            cls.proxy.start()
        except BaseException:
            cls.dv.stop(failed=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.dv.stop()

    def setUp(self):
        super().setUp()
        self.proxy.set_faults(Faults())

    # --- helpers ---------------------------------------------------------------------

    def profile(self, layout=None, limits=None):
        self.work.write_profile(
            self.dv, [(ALICE, "alice", self.dv.users["alice"])],
            source={"plugin": self.SOURCE_PLUGIN, "host": self.proxy.host,
                    "port": self.proxy.port, "tls": "none", "ca_file": None, "timeout": "10s"},
            limits=dict({"retries": 3}, **(limits or {})),
            sink={"plugin": "maildir", "path": os.path.join(self.work.out, "{email}"),
                  "layout": layout})

    def run_with(self, faults, code):
        self.proxy.set_faults(faults)
        # The test plugins' directory (gw-source-imapserial.so) beside the real one.
        tests_plugins = os.path.join(os.path.dirname(os.path.dirname(godwit_bin())), "tests",
                                     "plugins")
        proc = self.work.run("--plugin-path", tests_plugins, timeout=120)
        self.assertRun(proc, code)
        self.assertEqual([], self.proxy.violations, "the client broke IMAP syntax")
        self.assertEqual([], forged_log_lines(proc.stderr))
        return proc, mailbox_of(self.work.report_of(proc.stdout), ALICE)

    def sink(self, layout="maildirpp"):
        return verify.read_maildir(
            self.work.maildir(ALICE), decoder=tolerant_decoder(layout),
            layout="maildir++" if layout == "maildirpp" else "fs", delimiter="/",
            flag_letters=verify.SINK_FLAG_LETTERS)

    def assertSinkHolds(self, expected, layout="maildirpp", extra_empty=()):
        """The Maildir equals @expected (bytes, flags, dates, no duplicates); folders in
        @extra_empty may exist too but must be empty."""
        sink = self.sink(layout)
        removed = set()
        for name in list(sink):
            if name in extra_empty or name.startswith("<shortened:"):
                self.assertEqual([], sink[name], "hostile folder %r got messages" % name)
                del sink[name]
                removed.add(name)
        diffs = verify.compare(expected, sink)
        self.assertEqual([], diffs, verify.format_differences(diffs))
        self.assertEqual([], sink.stray)
        self.assertEqual(expected.count(), len(self.work.done_rows(ALICE)))
        self.assertEqual(0, self.work.pending_count())
        return removed

    def folder(self, box, name):
        for f in box["folders"]:
            if f["source"] == name:
                return f
        raise AssertionError("folder %r not in the report: %s"
                             % (name, [f["source"] for f in box["folders"]]))

    def assertClean(self, box, migrated):
        self.assertEqual("completed", box["status"], box["error"])
        self.assertIsNone(box["error"])
        self.assertEqual((migrated, self.total - migrated, 0),
                         (box["migrated"], box["already_present"], box["failed"]))
        for f in box["folders"]:
            self.assertIsNone(f["error"], f["source"])
            self.assertEqual([], f["failures"], f["source"])

    def rerun_copies(self, missing, layout="maildirpp"):
        """Without faults: exactly @missing messages are copied and the report is clean."""
        proc, box = self.run_with(Faults(), 0)
        self.assertClean(box, missing)
        self.assertEqual(1, box["attempts"])
        self.assertSinkHolds(self.source, layout)
        return proc, box

    def busiest_folders(self, n):
        names = [f for f in self.source if f not in self.source.noselect]
        names.sort(key=lambda f: (-len(self.source[f]), f))
        return names[:n]

    def assertRetriedAfter(self, proc, box, pattern):
        """One session error, retried once; the warning names the mailbox and the cause."""
        self.assertClean(box, self.total)
        self.assertEqual(2, box["attempts"], "one reconnect after the fault")
        retry = [line for line in proc.stderr.splitlines() if "retrying in" in line]
        self.assertEqual(1, len(retry), proc.stderr[-4000:])
        self.assertIn(ALICE, retry[0])
        self.assertRegex(retry[0], pattern)
        self.assertSinkHolds(self.source)

    def assertWarningNamesWhere(self, proc, folder, uid=None):
        """The mission's rule for dropped connections and malformed responses: the error
        names mailbox, folder (and the UID being fetched, when the client knows it)."""
        warnings = [line for line in proc.stderr.splitlines() if " warn " in line]
        naming = [line for line in warnings if ALICE in line and folder in line and
                  (uid is None or re.search(r"(?i)\buid %d\b" % uid, line))]
        self.assertTrue(naming, "no warning names mailbox %s, folder %r%s:\n%s" % (
            ALICE, folder, "" if uid is None else " and UID %d" % uid, "\n".join(warnings)))

    # --- (a) a message the server refuses ---------------------------------------------

    def test_refused_fetch_fails_only_those_messages(self):
        first, second = self.busiest_folders(2)
        refused = {first: sorted(m["uid"] for m in self.source[first])[:2],
                   second: [max(m["uid"] for m in self.source[second])]}
        self.profile()
        proc, box = self.run_with(Faults(refuse_fetch=refused), 1)
        self.assertEqual(3, self.proxy.count("refuse_fetch"), self.proxy.describe())
        self.assertEqual("partial", box["status"])
        self.assertIsNone(box["error"], "message failures do not stop the mailbox")
        self.assertEqual((self.total - 3, 3), (box["migrated"], box["failed"]))
        for name, uids in refused.items():
            f = self.folder(box, name)
            self.assertIsNone(f["error"])
            self.assertEqual(len(uids), f["failed"])
            self.assertEqual(uids, sorted(x["uid"] for x in f["failures"]))
            for failure in f["failures"]:
                self.assertEqual("source %s: the server refused UID %d: %s"
                                 % (self.SOURCE_PLUGIN, failure["uid"], INJECTED),
                                 failure["reason"])
                # The console names mailbox, folder and UID too.
                self.assertRegex(proc.stderr, r"%s.*folder %s uid %d: source %s: the server "
                                 r"refused UID %d" % (re.escape(ALICE), re.escape(name),
                                                      failure["uid"], self.SOURCE_PLUGIN,
                                                      failure["uid"]))
        drop = {(name, uid) for name, uids in refused.items() for uid in uids}
        self.assertSinkHolds(without(self.source, drop))
        self.rerun_copies(3)

    # --- (b) the connection drops inside a message literal ----------------------------

    def test_dropped_connection_inside_a_literal_is_retried(self):
        self.profile()
        proc, box = self.run_with(Faults(drop_in_body=BODY_FAULT_AT), 0)
        drops = self.proxy.of_kind("drop_in_body")
        self.assertEqual(1, len(drops), self.proxy.describe())
        self.assertGreater(drops[0]["sent"], 0, "cut inside the literal, not before it")
        self.assertLess(drops[0]["sent"], drops[0]["size"])
        # Whether the client's read or its pipelined write meets the cut first is a race.
        self.assertRetriedAfter(proc, box, r": source %s: (connection closed by|cannot "
                                r"(read from|write to)) 127\.0\.0\.1:\d+" % self.SOURCE_PLUGIN)
        self.rerun_copies(0)
        self.assertWarningNamesWhere(proc, drops[0]["folder"], drops[0]["uid"])

    # --- (b2) folder switches travel in the pipeline ---------------------------------

    def test_folder_switches_are_pipelined(self):
        """Each folder's EXAMINE goes out while the folder before it is still answered,
        in the scan and in the copy, so a switch costs no round trip; every message still
        lands in its own folder."""
        self.profile(limits={"connections_per_mailbox": 1})  # one connection, one batch
        # Each selection answered 50 ms late: a client that selects ahead does so well
        # inside that, even under sanitizers on a loaded machine (where, answered at
        # once, the proxy saw 13 of 28 once).
        proc, box = self.run_with(Faults(select_reply_delay_ms=50), 0)
        self.assertClean(box, self.total)
        ahead = [e["folder"] for e in self.proxy.of_kind("pipelined_select")]
        listed = sorted(f for f in self.source if f not in self.source.noselect)
        copied = [f for f in listed if self.source[f]]
        self.assertSinkHolds(self.source)
        if self.SOURCE_PLUGIN == "imapserial":
            self.assertEqual([], ahead, "a source without scan_folders and fetch_folders "
                             "selects and waits")
            return
        # The scan selects every folder but the first ahead, the copy every folder with
        # mail but the batch's first. The proxy can miss one (a reply it passed on may
        # not have reached the client yet), never count one too many: a client that
        # waits has nothing ahead.
        most = len(listed) - 1 + len(copied) - 1
        self.assertLessEqual(len(ahead), most, self.proxy.describe())
        self.assertGreaterEqual(len(ahead), most // 2, self.proxy.describe())
        self.assertLessEqual(set(ahead), set(listed))
        self.assertTrue(all(ahead.count(f) <= 2 for f in listed), ahead)

    def test_uidvalidity_changed_between_scan_and_copy_is_scanned_again(self):
        """The folder's second EXAMINE (the copy's, pipelined) reports a new UIDVALIDITY:
        none of its bodies may be taken for the scanned UIDs; the mailbox is scanned
        again and copied once, nothing twice."""
        # Not INBOX: the scan ends there, and a copy without fetch_folders (SerialSource)
        # finds it still selected, so it is selected only once.
        changed = [f for f in self.busiest_folders(2) if f != "INBOX"][0]
        self.profile()
        proc, box = self.run_with(Faults(uidvalidity_at={changed: 2}), 0)
        seen = self.proxy.of_kind("uidvalidity")
        self.assertEqual(1, len(seen), self.proxy.describe())
        self.assertRetriedAfter(
            proc, box, r'folder "%s": UIDVALIDITY changed during '
            r"the run \(%d -> %d\); scanning again" % (re.escape(changed), seen[0]["server"],
                                                        seen[0]["sent"]))
        self.rerun_copies(0)

    # --- (c) a folder the server will not open ---------------------------------------

    def test_refused_select_fails_only_that_folder(self):
        refused = self.busiest_folders(2)[1]
        count = len(self.source[refused])
        self.profile()
        proc, box = self.run_with(Faults(refuse_select={refused}), 1)
        self.assertEqual(1, self.proxy.count("refuse_select"), self.proxy.describe())
        self.assertEqual("partial", box["status"])
        self.assertIsNone(box["error"])
        f = self.folder(box, refused)
        self.assertEqual('cannot select folder "%s": %s' % (refused, INJECTED),
                         f["error"])
        self.assertEqual((0, 0), (f["found"], f["migrated"]))
        self.assertEqual(self.total - count, box["migrated"])
        self.assertRegex(proc.stderr, r"%s.*folder %s failed: .*%s" % (
            re.escape(ALICE), re.escape(refused), re.escape(INJECTED)))
        self.assertSinkHolds(without(self.source, {(refused, m["uid"])
                                                   for m in self.source[refused]}))
        self.rerun_copies(count)

    def test_folder_lost_during_the_copy_records_each_message_once(self):
        """The folder can be scanned, then cannot be selected again: every message of it
        not copied by then is a failure of its own, none twice, none silently dropped."""
        lost = self.busiest_folders(1)[0]
        uids = sorted(m["uid"] for m in self.source[lost])
        # Batches of 3 (one message each: two are in flight), slices of four of them
        # across folders: the copy comes back to each folder several times, and
        # the lost one fails with messages still ahead.
        # One lane: with two, the busiest folder may be its lane's only one, never
        # selected again after the scan.
        self.profile(limits={"batch_messages": 3, "connections_per_mailbox": 1})
        proc, box = self.run_with(Faults(refuse_select_from={lost: 2}), 1)
        self.assertEqual(1, self.proxy.count("refuse_select"), self.proxy.describe())
        self.assertEqual("partial", box["status"])
        f = self.folder(box, lost)
        self.assertIn(INJECTED, f["error"])
        failed = [x["uid"] for x in f["failures"]]
        self.assertEqual(len(failed), len(set(failed)), "a message recorded twice")
        self.assertGreater(len(failed), 3, "nothing was ahead of the cursor")
        copied = {r[1] for r in self.work.done_rows(ALICE) if r[0] == lost}
        self.assertEqual(uids, sorted(set(failed) | copied))
        self.assertEqual(set(), set(failed) & copied)
        self.assertEqual((len(copied), len(failed)), (f["migrated"], f["failed"]))
        self.assertEqual(self.total - len(failed), box["migrated"])
        self.assertSinkHolds(without(self.source, {(lost, u) for u in failed}))
        self.rerun_copies(len(failed))

    # --- (d) hostile folder names ------------------------------------------------------

    def hostile_names(self, layout):
        self.profile(layout)
        names = HOSTILE_LEGAL + HOSTILE_ILLEGAL
        root = os.path.realpath(self.work.maildir(ALICE))
        proc, box = self.run_with(Faults(extra_folders=names), 1)
        self.assertGreaterEqual(self.proxy.count("list"), 1)
        self.assertEqual("partial", box["status"])
        # Every legal name was opened (as an empty folder) and stored inside the root.
        opened = {e["folder"] for e in self.proxy.of_kind("empty_select")}
        for name in HOSTILE_LEGAL:
            f = self.folder(box, name)
            self.assertIsNone(f["error"], name)
            self.assertEqual(sink_folder_id(name, layout), f["sink_folder"], repr(name))
            self.assertEqual((0, 0), (f["found"], f["migrated"]))
            self.assertIn(name, opened)
            path = os.path.realpath(os.path.join(root, f["sink_folder"]))
            self.assertTrue(path.startswith(root + os.sep), path)
            for sub in ("cur", "new", "tmp"):
                self.assertTrue(os.path.isdir(os.path.join(path, sub)), (name, sub))
        # Names with an empty component are refused, with the reason, and never opened.
        for name in HOSTILE_ILLEGAL:
            f = self.folder(box, name)
            self.assertIsNone(f["sink_folder"], name)
            self.assertRegex(f["error"], r'^cannot migrate folder "%s".*empty' % re.escape(name))
            self.assertNotIn(name, opened)
        self.assertNothingOutside(root, names)
        # The sink's directories decode back to the hostile names (README "Decoding"),
        # except the shortened one; the rest of the mailbox is intact.
        removed = self.assertSinkHolds(self.source, layout, extra_empty=set(HOSTILE_LEGAL))
        shortened = "<shortened:%s>" % sink_folder_id(LONG_NAME, layout)[
            1 if layout == "maildirpp" else 0:]
        self.assertEqual(sorted(set(HOSTILE_LEGAL) - {LONG_NAME} | {shortened}), sorted(removed))
        # Without the hostile names the mailbox is complete and nothing is copied again.
        proc, box = self.run_with(Faults(), 0)
        self.assertClean(box, 0)

    def assertNothingOutside(self, root, names):
        """No file or directory of the run lies outside the sink root (by realpath)."""
        for dirpath, dirnames, filenames in os.walk(root):
            for entry in dirnames + filenames:
                path = os.path.join(dirpath, entry)
                self.assertFalse(os.path.islink(path), path)
                self.assertTrue(os.path.realpath(path).startswith(root + os.sep), path)
        self.assertEqual(["out", "profile.yaml", "reports", "state.db"],
                         sorted(n for n in os.listdir(self.work.path)
                                if not n.startswith("state.db-")))
        self.assertEqual([ALICE], os.listdir(self.work.out))
        for name in names:
            naive = os.path.normpath(os.path.join(root, name.strip("/")))
            if not (naive + os.sep).startswith(root + os.sep) and \
                    not (root + os.sep).startswith(naive + os.sep):
                self.assertFalse(os.path.lexists(naive), naive)

    def test_hostile_folder_names_maildirpp(self):
        self.hostile_names("maildirpp")

    def test_hostile_folder_names_fs_layout(self):
        self.hostile_names("fs")

    def test_folder_names_that_cannot_be_quoted(self):
        """CR, LF and NUL in a listed name. A quoted string cannot hold them: sent
        quoted, the name's CRLF ends the command and the rest runs as commands of its
        own (here a CREATE at the source). Each name must be stored safely or
        reported, and none dropped without a word in the report."""
        self.profile()
        root = os.path.realpath(self.work.maildir(ALICE))
        self.addCleanup(self.delete_source_folder, INJECTED_FOLDER)
        self.proxy.set_faults(Faults(extra_folders=HOSTILE_PROTOCOL))
        proc = self.work.run(timeout=120)
        self.assertNotIn("Sanitizer", proc.stderr)
        self.assertIn(proc.returncode, (0, 1), proc.stderr[-4000:])
        box = mailbox_of(self.work.report_of(proc.stdout), ALICE)
        problems = ["the client sent: %s" % v for v in self.proxy.violations]
        if INJECTED_FOLDER in self.source_folders():
            problems.append("a listed folder name made the client CREATE %r at the source"
                            % INJECTED_FOLDER)
        said = "\n".join([f["source"] + " " + (f["error"] or "") for f in box["folders"]]
                         + box["warnings"] + [box["error"] or ""])
        for name in HOSTILE_PROTOCOL:
            if re.split("[\r\n\0]", name)[0] not in said:
                problems.append("the report says nothing about folder %r" % name)
        problems += ["a folder name forged this console line: %r" % line
                     for line in forged_log_lines(proc.stderr)]
        self.assertEqual([], problems, "\n".join(problems))
        # The client shows such a name with CR, LF and NUL written as \\xNN, reports
        # the folder failed (it cannot be selected) and never sends the raw name.
        shown = {re.sub("[\r\n\0]", lambda m: "\\x%02x" % ord(m.group()), n)
                 for n in HOSTILE_PROTOCOL}
        for name in shown:
            self.assertIn("cannot be sent back in an IMAP command",
                          self.folder(box, name)["error"] or "", name)
        self.assertNothingOutside(root, [])
        self.assertSinkHolds(self.source, extra_empty=shown)

    def source_folders(self):
        client = self.dv.imap("alice")
        try:
            return {f.name for f in verify.imapio.list_folders(client)}
        finally:
            client.logout()

    def delete_source_folder(self, name):
        if name in self.source_folders():
            client = self.dv.imap("alice")
            try:
                client.delete(name)
            finally:
                client.logout()

    # --- (e) a malformed response in the middle of a FETCH ---------------------------

    def test_malformed_fetch_response_is_a_session_error(self):
        self.profile()
        proc, box = self.run_with(Faults(garbage_at_body=BODY_FAULT_AT), 0)
        garbage = self.proxy.of_kind("garbage")
        self.assertEqual(1, len(garbage), self.proxy.describe())
        self.assertRetriedAfter(proc, box, r"IMAP protocol error from 127\.0\.0\.1: ")
        self.rerun_copies(0)
        self.assertWarningNamesWhere(proc, garbage[0]["folder"])

    # --- (f) BYE while fetching --------------------------------------------------------

    def test_bye_during_fetch_is_retried(self):
        self.profile()
        proc, box = self.run_with(Faults(bye_at_body=BODY_FAULT_AT), 0)
        bye = self.proxy.of_kind("bye")
        self.assertEqual(1, len(bye), self.proxy.describe())
        self.assertRetriedAfter(proc, box, r"IMAP server 127\.0\.0\.1 closed the connection: "
                                r"injected: server shutting down")
        self.rerun_copies(0)
        self.assertWarningNamesWhere(proc, bye[0]["folder"])


class SerialSource(FaultCase):
    """The faults that concern fetching, through the imap source built without
    fetch_folders (tests/plugins: gw-source-imapserial.so), as a source of plugin ABI
    1.1 is: the core then selects and fetches folder by folder, and that path must hold
    as well as the pipelined one."""

    SOURCE_PLUGIN = "imapserial"
    # Not about fetching: once, above, is enough.
    test_hostile_folder_names_maildirpp = None
    test_hostile_folder_names_fs_layout = None
    test_folder_names_that_cannot_be_quoted = None
    test_malformed_fetch_response_is_a_session_error = None


if __name__ == "__main__":
    from harness.testcase import main

    main()
