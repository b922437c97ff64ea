"""Shared pieces of the end-to-end migration tests (tests/integration/test_migrate_*.py).

Each test writes a profile and runs the real `godwit run` against the
harness's private Dovecot, then checks the Maildir the run wrote, the run's
JSON report and the state database.

GODWIT_BIN and GODWIT_PLUGIN_DIR come from tests/integration/CMakeLists.txt;
run by hand, they default to the build tree `build/` of the repository.
A missing binary is a failure, never a skip.
"""

import glob
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))

from harness import dovecot, imapio, mailgen, seed, verify  # noqa: E402

__all__ = ["dovecot", "imapio", "mailgen", "seed", "verify", "godwit_bin", "plugin_dir",
           "Workdir", "MigrationCase", "sink_decoder", "read_sink", "pending_in_state"]


def godwit_bin():
    path = os.environ.get("GODWIT_BIN") or os.path.join(REPO, "build", "bin", "godwit")
    if not os.access(path, os.X_OK):
        raise AssertionError("godwit executable not found at %s (set GODWIT_BIN)" % path)
    return path


def plugin_dir():
    path = os.environ.get("GODWIT_PLUGIN_DIR") or os.path.join(os.path.dirname(
        os.path.dirname(godwit_bin())), "plugins")
    if not os.path.isdir(path):
        raise AssertionError("plugin directory %s not found (set GODWIT_PLUGIN_DIR)" % path)
    return path


_ESCAPE_RE = re.compile(rb"\\([0-9a-f]{2})")


def sink_decoder(dirname):
    """The maildir sink's Maildir++ directory name (without the leading dot) -> "a/b"
    (plugins/sink-maildir/README.md: components split at '.', bytes escaped as \\xx)."""
    parts = dirname.encode("utf-8", "surrogateescape").split(b".")
    return "/".join(_ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 16)]), p).decode("utf-8")
                    for p in parts)


# The sink writes $Forwarded as the Maildir flag P (plugins/sink-maildir/README.md).
SINK_FLAG_LETTERS = dict(verify.DOVECOT_FLAG_LETTERS, P="$Forwarded")


def read_sink(root, delimiter="/"):
    """The sink's Maildir++ tree as a manifest; folder names joined with @delimiter."""
    return verify.read_maildir(
        root, delimiter=delimiter, flag_letters=SINK_FLAG_LETTERS,
        decoder=lambda d: delimiter.join(sink_decoder(part) for part in d.split(".")))


def yaml_str(value):
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


class Workdir:
    """A temporary folder with a profile, its state, reports and the Maildir output."""

    def __init__(self, prefix="godwit-e2e-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        self.profile = os.path.join(self.path, "profile.yaml")
        self.state = os.path.join(self.path, "state.db")
        self.reports = os.path.join(self.path, "reports")
        self.out = os.path.join(self.path, "out")

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def maildir(self, email):
        return os.path.join(self.out, email)

    def write_profile(self, dv, mailboxes, source=None, messages=None, limits=None,
                      folders=None, pipeline="e2e", sink=None):
        """@mailboxes: [(email, username, password)]; @source: option overrides
        (default: implicit TLS on the harness's TLS port, trusting its CA); @sink: the
        sink's options (default: the maildir sink into self.out)."""
        src = {"plugin": "imap", "host": dv.host, "port": dv.port_tls, "tls": "implicit",
               "ca_file": dv.ca_file}
        src.update(source or {})
        snk = sink or {"plugin": "maildir", "path": os.path.join(self.out, "{email}")}
        lines = ["version: 1", "state: %s" % yaml_str(self.state),
                 "report: %s" % yaml_str(self.reports), "pipelines:",
                 "  - name: %s" % pipeline]
        for section, options in (("source", src), ("sink", snk)):
            lines.append("    %s:" % section)
            for key, value in options.items():
                if value is not None:
                    lines.append("      %s: %s" % (key, json.dumps(value, ensure_ascii=False)))
        lines += ["    mailboxes:", "      list:"]
        for email, username, password in mailboxes:
            lines.append("        - email: %s" % yaml_str(email))
            lines.append("          username: %s" % yaml_str(username))
            lines.append("          password: %s" % yaml_str(password))
        for section, values in (("folders", folders), ("messages", messages),
                                ("limits", limits)):
            if values:
                lines.append("    %s:" % section)
                for key, value in values.items():
                    lines.append("      %s: %s" % (key, json.dumps(value, ensure_ascii=False)))
        with open(self.profile, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return self.profile

    def start(self, *args):
        """Start `godwit run` without waiting (for signal tests)."""
        return subprocess.Popen([godwit_bin(), "run", self.profile, "--plugin-path", plugin_dir()]
                                + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def run(self, *args, timeout=600):
        proc = subprocess.run([godwit_bin(), "run", self.profile, "--plugin-path", plugin_dir()]
                              + list(args), capture_output=True, text=True, timeout=timeout)
        return proc

    def report_of(self, stdout):
        """The JSON report whose path the run printed in its summary."""
        match = re.search(r"^  report:\s+(\S+\.json)$", stdout, re.M)
        if not match:
            raise AssertionError("no report path in the run's output:\n" + stdout)
        with open(match.group(1), encoding="utf-8") as f:
            return json.load(f)

    def report_files(self):
        return sorted(glob.glob(os.path.join(self.reports, "report-*.json")))

    def db(self):
        con = sqlite3.connect("file:%s?mode=ro" % self.state, uri=True, timeout=10)
        return con

    def done_rows(self, email):
        """(folder, uid, internal_date, sha256, seq) of done rows in arrival order."""
        with self.db() as con:
            return con.execute(
                "SELECT folder, uid, internal_date, sha256, seq FROM messages_by_name "
                "WHERE mailbox = ? AND status = 'done' ORDER BY seq", (email,)).fetchall()

    def pending_count(self):
        with self.db() as con:
            return len(pending_in_state(con))


def _flight_records(blob):
    """(uidvalidity, uid) of a flight's packed records (core/src/flight_pack.h)."""
    at, out = 0, []
    while at < len(blob):
        uidvalidity, uid = struct.unpack_from("<II", blob, at)
        at += 24
        for _text in range(2):  # origin key, Message-ID: u32 length, bytes
            at += 4 + struct.unpack_from("<I", blob, at)[0]
        out.append((uidvalidity, uid))
    return out


def pending_in_state(con):
    """(pipeline, mailbox, folder, uid) of every message the state has pending: its
    pending rows and the records of batches in flight (core/src/state.c, "flights")."""
    rows = con.execute("SELECT pipeline, mailbox, folder, uid FROM messages_by_name "
                       "WHERE status = 'pending'").fetchall()
    for pipeline, mailbox, folder, blob in con.execute(
            "SELECT f.pipeline, f.mailbox, f.folder, l.records FROM flights l "
            "JOIN folders f ON f.id = l.folder_id"):
        rows += [(pipeline, mailbox, folder, uid) for _uv, uid in _flight_records(blob)]
    return rows


def mailbox_of(report, email):
    for m in report["mailboxes"]:
        if m["mailbox"] == email:
            return m
    raise AssertionError("mailbox %s not in the report" % email)


class MigrationCase(unittest.TestCase):
    """unittest base: a Workdir per test, output shown when a test fails."""

    maxDiff = None

    def setUp(self):
        self.work = Workdir()
        self.addCleanup(self.work.cleanup)

    def assertRun(self, proc, code):
        # Under the sanitizer build an ASan/UBSan report is a failure whatever the exit code.
        self.assertNotIn("Sanitizer", proc.stderr, proc.stderr[-6000:])
        self.assertEqual(proc.returncode, code,
                         "godwit exited %s, expected %s\nstdout:\n%s\nstderr:\n%s"
                         % (proc.returncode, code, proc.stdout, proc.stderr[-6000:]))

    def assertSinkEqualsSource(self, dv, user, email, ignore_folders=(), allow_tmp=False):
        """@allow_tmp: a killed writer may leave files in tmp/ (Maildir readers ignore them)."""
        client = dv.imap(user)
        try:
            source = verify.read_server(client)
        finally:
            client.logout()
        sink = read_sink(self.work.maildir(email), source.delimiter)
        diffs = verify.compare(source, sink, ignore_folders=ignore_folders)
        self.assertEqual([], diffs, verify.format_differences(diffs))
        stray = [p for p in sink.stray if not (allow_tmp and "/tmp/" in p)]
        self.assertEqual([], stray)
        return source, sink


def wait_until(predicate, timeout, interval=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
