"""Proves the test harness (tests/harness/) that every integration test relies on.

Run: python3 tests/integration/test_harness.py   (or ctest -R integration.harness)
"""

import calendar
import hashlib
import imaplib
import os
import socket
import ssl
import sys
import time
import unittest
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness import imapio, mailgen, mutf7, seed, verify  # noqa: E402
from harness.dovecot import Dovecot, HarnessError  # noqa: E402
from harness.testcase import DovecotTestCase, main  # noqa: E402

# The default tree as a Dovecot with separator "/" lists it: exactly these.
SLASH_TREE = {
    "INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive", "Archive/2019", "Archive/2020",
    "Ärger", "Ärger/Überfällig", "日本語", "Projects", "Projects/Q1 Planning",
    "Projects/Q1 Planning/Deep Nest", "R&D", "R&D/Tom & Jerry", "Dotted.Name", "Empty Folder",
}
SPECIAL = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk",
           "Archive": "\\Archive"}
EDGE_NAMES = [
    "edge/no-message-id", "edge/duplicate-message-id-1", "edge/duplicate-message-id-2",
    "edge/bare-lf", "edge/crlf", "edge/mixed-eol-bare-cr", "edge/long-line-5000",
    "edge/utf8-headers-rfc6532", "edge/8bit-latin1-header", "edge/rfc2047-subject",
    "edge/nul-byte", "edge/header-no-body", "edge/incomplete-header", "edge/mbox-from-line",
    "edge/multipart-attachments", "edge/exact-size-4096",
]


def planned_counts(result):
    counts = Counter(result.folders[p.folder] for p in result.planned)
    return {name: counts.get(name, 0) for name in result.folders.values()}


class ServerBasics(DovecotTestCase):
    """Start-up, TLS, logins, users."""

    def test_starts_fast_on_two_free_ports(self):
        dv = self.dovecot
        self.assertLess(dv.startup_seconds, 2.0)
        self.assertTrue(dv.running)
        self.assertNotEqual(dv.port_plain, dv.port_tls)
        self.assertTrue(dv.root.startswith("/") and os.path.isdir(os.path.join(dv.root, "run")))
        with socket.create_connection((dv.host, dv.port_plain), timeout=5) as s:
            self.assertTrue(s.recv(512).startswith(b"* OK [CAPABILITY IMAP4rev1"))
        self.assertIn("starting up for imap", dv.log_text())

    def test_implicit_tls_verifies_against_test_ca_by_ip_and_name(self):
        dv = self.dovecot
        for server_name in ("127.0.0.1", "localhost"):
            ctx = ssl.create_default_context(cafile=dv.ca_file)
            self.assertTrue(ctx.check_hostname)
            with socket.create_connection((dv.host, dv.port_tls), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
                    cert = tls.getpeercert()
                    self.assertEqual(
                        sorted(cert["subjectAltName"]),
                        [("DNS", "localhost"), ("IP Address", "127.0.0.1")])
                    self.assertTrue(tls.recv(512).startswith(b"* OK"))

    def test_starttls_verifies_and_then_logs_in(self):
        client = self.dovecot.imap("alice", tls="starttls")
        try:
            self.assertEqual("AUTH", client.state)
            self.assertIsInstance(client.sock, ssl.SSLSocket)
        finally:
            client.logout()

    def test_untrusted_context_and_wrong_name_fail(self):
        dv = self.dovecot
        system = ssl.create_default_context()  # the system store does not know the test CA
        with socket.create_connection((dv.host, dv.port_tls), timeout=5) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError) as caught:
                system.wrap_socket(raw, server_hostname="127.0.0.1")
        self.assertIn("unable to get local issuer certificate", str(caught.exception))
        ours = dv.ssl_context()
        with socket.create_connection((dv.host, dv.port_tls), timeout=5) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError) as caught:
                ours.wrap_socket(raw, server_hostname="imap.example.org")
        self.assertIn("Hostname mismatch", str(caught.exception))

    def test_master_user_login_both_ways(self):
        dv = self.dovecot
        own = dv.imap("bob")
        try:
            seed.append_messages(own, "INBOX", [mailgen.GenMessage(
                "marker", mailgen.message_of_size(600, seed="marker"), 1262304000, ("\\Flagged",))])
        finally:
            own.logout()
        for how in ("login", "plain"):
            client = dv.imap("bob", master=how, tls="implicit")
            try:
                msgs = imapio.fetch_folder(client, "INBOX")
                self.assertEqual(1, len(msgs), how)
                self.assertEqual(("\\Flagged",), msgs[0].flags)
                self.assertEqual(1262304000, msgs[0].internaldate)
            finally:
                client.logout()
        self.assertIn("user=<bob>, method=PLAIN", dv.log_text())

    def test_wrong_passwords_are_refused(self):
        dv = self.dovecot
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED"):
            dv.imap("alice", password="not-the-password")
        dv.master_password, real = "wrong-master", dv.master_password
        try:
            with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED"):
                dv.imap("alice", master="login")
        finally:
            dv.master_password = real
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHORIZATIONFAILED"):
            dv.imap("nobody-here", master="plain")  # master may act only as existing users

    def test_add_user_while_running(self):
        dv = self.dovecot
        password = dv.add_user("carol")
        client = dv.imap("carol", password=password)
        self.assertEqual("OK", client.select("INBOX")[0])  # Dovecot makes the Maildir now
        client.logout()
        self.assertEqual(password, dv.users["carol"])
        st = os.stat(dv.maildir_of("carol"))
        self.assertEqual(8, st.st_uid)  # the mail user owns the Maildir
        with self.assertRaises(ValueError):
            dv.add_user("bad:name")


class SeedSlashTree(DovecotTestCase):
    """Seeding the default tree (no corpus) and reading it back."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.result = seed.seed_user(cls.dovecot, "alice", generated=60, corpus=False, out=None)

    def test_no_problems_and_one_note(self):
        self.assertEqual([], self.result.problems)
        self.assertEqual(["folder 'Slash/Name' left out: a name containing the server's "
                          "hierarchy delimiter '/' cannot exist there (its messages go to INBOX)"], self.result.notes)

    def test_exact_folder_tree_special_use_and_parents(self):
        m = self.result.manifest
        self.assertEqual(SLASH_TREE, set(m))
        self.assertEqual(SPECIAL, m.special_use)
        self.assertEqual({"Ärger"}, m.noselect)
        self.assertEqual("/", m.delimiter)

    def test_exact_counts(self):
        m = self.result.manifest
        self.assertEqual(16 + 60, m.count())
        expected = planned_counts(self.result)
        self.assertEqual(expected, {name: len(m[name]) for name in expected})
        self.assertEqual(0, len(m["Empty Folder"]))
        self.assertEqual(16 + 60 - sum(expected.values()), 0)

    def test_fetch_back_gives_seeded_hashes_flags_dates(self):
        m = self.result.manifest
        for p in self.result.planned:
            entry = next(e for e in m[self.result.folders[p.folder]] if e["uid"] == p.uid)
            self.assertEqual(hashlib.sha256(mailgen.served_by_dovecot(p.data)).hexdigest(),
                             entry["sha256"], p.origin)
            self.assertEqual(imapio.normalise_flags(p.flags), entry["flags"], p.origin)
            self.assertEqual(p.internaldate, entry["internaldate"], p.origin)
            self.assertEqual(p.origin, entry["origin"])

    def test_edge_cases_served_as_measured(self):
        inbox = {e["origin"]: e for e in self.result.manifest["INBOX"]}
        self.assertEqual(EDGE_NAMES, [n for n in EDGE_NAMES if n in inbox])
        edges = {m.name: m for m in mailgen.edge_cases(1)}
        nul = edges["edge/nul-byte"].data
        self.assertIn(b"\0", nul)
        self.assertEqual(hashlib.sha256(nul.replace(b"\0", b"\x80")).hexdigest(),
                         inbox["edge/nul-byte"]["sha256"])
        lf = edges["edge/bare-lf"].data
        self.assertEqual(hashlib.sha256(lf.replace(b"\n", b"\r\n")).hexdigest(),
                         inbox["edge/bare-lf"]["sha256"])
        self.assertEqual(4096, inbox["edge/exact-size-4096"]["size"])
        self.assertEqual(("$Forwarded", "\\Seen"), inbox["edge/bare-lf"]["flags"])
        self.assertEqual(("Godwit_Custom", "\\Seen"), inbox["edge/rfc2047-subject"]["flags"])

    def test_dates_spread_over_years(self):
        years = {time.gmtime(e["internaldate"]).tm_year
                 for msgs in self.result.manifest.values() for e in msgs}
        self.assertGreaterEqual(len(years), 15)

    def test_mutf7_names_on_the_wire(self):
        client = self.dovecot.imap("alice")
        try:
            typ, lines = client.list('""', "*")
        finally:
            client.logout()
        self.assertEqual("OK", typ)
        wire = b"\n".join(line for line in lines if isinstance(line, bytes))
        for raw in (b'"/" &AMQ-rger/&ANw-berf&AOQ-llig', b'"/" &ZeVnLIqe-',
                    b'"/" "R&-D/Tom &- Jerry"', b'"/" "Projects/Q1 Planning/Deep Nest"',
                    b'"/" Dotted.Name'):
            self.assertIn(raw, wire)

    def test_reading_again_compares_equal_and_a_change_is_found(self):
        client = self.dovecot.imap("alice")
        try:
            again = verify.read_server(client)
            self.assertEqual([], verify.compare(self.result.manifest, again, special_use=True))
            client.select(imapio.quote(mutf7.encode("日本語")))
            uid = again["日本語"][0]["uid"]
            client.uid("STORE", str(uid), "+FLAGS", "($label1)")
            changed = verify.read_server(client)
            client.select(imapio.quote(mutf7.encode("日本語")))
            client.uid("STORE", str(uid), "-FLAGS", "($label1)")
        finally:
            client.logout()
        diffs = verify.compare(self.result.manifest, changed)
        self.assertEqual(["flag-mismatch"], [d.kind for d in diffs])
        self.assertEqual("日本語", diffs[0].folder)


class MaildirReaderOnDovecotsOwnMaildir(DovecotTestCase):
    """With mail_save_crlf = yes Dovecot's Maildir holds the served bytes, except NUL."""

    dovecot_options = {"mail_save_crlf": True}

    def test_only_the_nul_message_differs(self):
        result = seed.seed_user(self.dovecot, "alice", generated=40, corpus=False, out=None)
        self.assertEqual([], result.problems)
        disk = verify.read_maildir(self.dovecot.maildir_of("alice"))
        self.assertEqual([], disk.stray)
        diffs = verify.compare(result.manifest, disk)
        self.assertEqual([("hash-mismatch", "INBOX")], [(d.kind, d.folder) for d in diffs])
        self.assertEqual("edge/nul-byte", diffs[0].expected["origin"])
        self.assertEqual(hashlib.sha256(next(m.data for m in mailgen.edge_cases(1)
                                             if m.name == "edge/nul-byte")).hexdigest(),
                         diffs[0].actual["sha256"])


class CourierStyleInstance(DovecotTestCase):
    dovecot_options = {"separator": ".", "prefix": "INBOX."}

    def test_tree_with_prefix_and_slash_in_a_name(self):
        result = seed.seed_user(self.dovecot, "alice", generated=20, corpus=False, out=None)
        self.assertEqual([], result.problems)
        self.assertEqual(["folder 'Dotted.Name' left out: a name containing the server's "
                          "hierarchy delimiter '.' cannot exist there (its messages go to INBOX)"], result.notes)
        expected = {"INBOX"} | {"INBOX." + n.replace("/", ".")
                                for n in SLASH_TREE - {"INBOX", "Dotted.Name"}} | {"INBOX.Slash/Name"}
        self.assertEqual(expected, set(result.manifest))
        self.assertEqual({"INBOX." + k: v for k, v in SPECIAL.items()}, result.manifest.special_use)
        self.assertEqual(16 + 20, result.manifest.count())
        self.assertTrue(os.path.isdir(os.path.join(self.dovecot.maildir_of("alice"), ".Slash\\2fName")))


class OptionalLimits(DovecotTestCase):
    dovecot_options = {"append_limit": 50000, "imap_max_line_length": 1024}

    def test_appendlimit_advertised_and_enforced(self):
        client = self.dovecot.imap("alice")
        try:
            caps = client.capability()[1][0].split()
            self.assertIn(b"APPENDLIMIT=50000", caps)
            small = mailgen.GenMessage("small", mailgen.message_of_size(50000), 1e9, ())
            self.assertEqual([1], seed.append_messages(client, "INBOX", [small]))
            big = mailgen.GenMessage("big", mailgen.message_of_size(50001), 1e9, ())
            with self.assertRaisesRegex(imapio.ImapError, r"\[LIMIT\]"):
                seed.append_messages(client, "INBOX", [big])
        finally:
            client.logout()

    def test_max_line_length(self):
        client = self.dovecot.imap("alice")
        try:
            client.send(b'L1 SELECT "' + b"x" * 900 + b'"\r\n')
            self.assertTrue(client.readline().startswith(b"L1 NO Mailbox doesn't exist: xxx"))
            client.send(b'L2 SELECT "' + b"x" * 2000 + b'"\r\n')
            self.assertTrue(client.readline().startswith(
                b"L2 BAD Error in IMAP command SELECT: Too long argument"))
        finally:
            client.shutdown()


class HarnessWithoutServer(unittest.TestCase):
    """Pieces that need no running Dovecot."""

    def test_missing_dovecot_is_an_error_naming_the_package(self):
        old = os.environ.get("GODWIT_DOVECOT")
        os.environ["GODWIT_DOVECOT"] = "/nonexistent/dovecot"
        try:
            with self.assertRaises(HarnessError) as caught:
                Dovecot().start()
        finally:
            if old is None:
                del os.environ["GODWIT_DOVECOT"]
            else:
                os.environ["GODWIT_DOVECOT"] = old
        self.assertIn("dovecot-imapd", str(caught.exception))
        self.assertIn("scripts/test", str(caught.exception))

    def test_stop_removes_root_unless_kept_on_failure(self):
        old = os.environ.get("GODWIT_KEEP_TEST_DIRS")
        try:
            os.environ["GODWIT_KEEP_TEST_DIRS"] = "1"
            dv = Dovecot()
            dv.start()
            root, pid = dv.root, dv.pid
            dv.stop()
            self.assertFalse(os.path.exists(root))
            with self.assertRaises(ProcessLookupError):
                os.kill(pid, 0)
            dv = Dovecot()
            dv.start()
            root = dv.root
            dv.stop(failed=True)
            self.assertTrue(os.path.isfile(os.path.join(root, "dovecot.conf")))
        finally:
            if old is None:
                os.environ.pop("GODWIT_KEEP_TEST_DIRS", None)
            else:
                os.environ["GODWIT_KEEP_TEST_DIRS"] = old
        import shutil
        shutil.rmtree(root)

    def test_mutf7(self):
        for text, wire in (("Ärger/Überfällig", "&AMQ-rger/&ANw-berf&AOQ-llig"), ("日本語", "&ZeVnLIqe-"),
                           ("R&D", "R&-D"), ("x😀y", "x&2D3eAA-y"), ("plain ~ name", "plain ~ name")):
            self.assertEqual(wire, mutf7.encode(text))
            self.assertEqual(text, mutf7.decode(wire))
        # unterminated, bare "&" at the end, printable ASCII encoded, DEL, not base64
        for bad in ("&AMQ", "x&", "&AGE-", "a\x7fb", "&!!-"):
            with self.assertRaises(mutf7.MUTF7Error, msg=bad):
                mutf7.decode(bad)

    def test_mailgen_is_deterministic_and_exact(self):
        first = [m.sha256 for m in mailgen.edge_cases(1)] + [m.sha256 for m in mailgen.generate(30, 5)]
        again = [m.sha256 for m in mailgen.edge_cases(1)] + [m.sha256 for m in mailgen.generate(30, 5)]
        self.assertEqual(first, again)
        self.assertNotEqual(first, [m.sha256 for m in mailgen.edge_cases(2)] +
                            [m.sha256 for m in mailgen.generate(30, 6)])
        self.assertEqual(EDGE_NAMES, [m.name for m in mailgen.edge_cases(1)])
        for size in (300, 301, 1000, 4096, 102400, 102401, 1 << 20):
            data = mailgen.message_of_size(size, seed=size)
            self.assertEqual(size, len(data))
            self.assertEqual(data, mailgen.served_by_dovecot(data))  # served unchanged
        att = mailgen.multipart_with_attachments((10, 5000))
        self.assertIn(b'filename="blob-1-5000.bin"', att)
        self.assertEqual(30, len({m.internaldate for m in mailgen.generate(30, 5)}))

    def test_served_model(self):
        f = mailgen.served_by_dovecot
        self.assertEqual(b"a\r\nb\r\n", f(b"a\nb\n"))
        self.assertEqual(b"a\r\nb", f(b"a\r\r\nb"))
        self.assertEqual(b"a\rb", f(b"a\rb\r"))
        self.assertEqual(b"a\rb\r", f(b"a\rb\r", mail_save_crlf=True))
        self.assertEqual(b"\x80\r\n", f(b"\0\n"))

    def test_internaldate_roundtrip(self):
        epoch = calendar.timegm((2009, 1, 5, 10, 0, 0))
        self.assertEqual("05-Jan-2009 10:00:00 +0000", imapio.format_internaldate(epoch))
        self.assertEqual(epoch, imapio.parse_internaldate('"05-Jan-2009 11:30:00 +0130"'))
        self.assertEqual(epoch, imapio.parse_internaldate(" 5-Jan-2009 02:00:00 -0800"))

    def test_compare_reports_each_kind(self):
        def msg(h, date=100, flags=(), size=10, uid=None):
            return {"uid": uid, "sha256": h, "flags": flags, "internaldate": date, "size": size}

        exp = verify.Manifest()
        exp.noselect.add("P")
        exp.update({
            "INBOX": [msg("a"), msg("b", 200), msg("c", 300, ("\\Seen",)), msg("d", 400), msg("e", 500),
                      msg("f", 600, size=10)],
            "P": [], "P/child": [msg("g", 700)], "Gone": [msg("h", 800)],
        })
        act = verify.Manifest()
        act.update({
            "INBOX": [msg("a"), msg("a"), msg("c", 300, ()), msg("d", 401), msg("X", 500),
                      msg("f", 600, size=11), msg("new", 900)],
            "P/child": [msg("g", 700)], "Surprise": [],
        })
        got = sorted((d.kind, d.folder) for d in verify.compare(exp, act))
        self.assertEqual(sorted([
            ("folder-missing", "Gone"), ("folder-extra", "Surprise"),
            ("duplicate", "INBOX"), ("missing", "INBOX"), ("flag-mismatch", "INBOX"),
            ("date-mismatch", "INBOX"), ("hash-mismatch", "INBOX"), ("size-mismatch", "INBOX"),
            ("extra", "INBOX"),
        ]), got)
        self.assertEqual([], verify.compare(exp, exp))
        mapped = verify.compare(exp, act, folder_map={"Gone": None}, flags=False, dates=False, sizes=False)
        self.assertEqual(sorted(["folder-extra", "duplicate", "missing", "hash-mismatch", "extra"]),
                         sorted(d.kind for d in mapped))

    def test_sink_decoder_follows_its_readme(self):
        d = verify.sink_maildir_decoder()
        self.assertEqual("Archive/2019", d("Archive.2019"))
        self.assertEqual("a.b", d("a\\2eb"))
        self.assertEqual("a/b", d("a\\2fb"))
        self.assertEqual("..", d("\\2e\\2e"))
        self.assertEqual("~x", d("\\7ex"))
        self.assertEqual("Über/Ärger & Co", d("Über.Ärger & Co"))
        fs = verify.sink_maildir_decoder(layout="fs")
        self.assertEqual("Archive/2019", fs("Archive/2019"))
        self.assertEqual("cur", fs("\\63ur"))
        with self.assertRaises(ValueError):
            d("x" * 188 + "~0123abcd")


if __name__ == "__main__":
    main()
