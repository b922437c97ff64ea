"""The benchmark suite at CI size: `bench/run --quick`, correctness only.

bench/run --quick writes a 300-message corpus (and a 100-message one) into a
private Dovecot and runs every case once. This test asserts no timing at all,
only that:
  - every godwit row ran and was verified exact (bytes by SHA-256, flags,
    internal dates, folder tree: tests/harness/verify.py), the no-change re-run
    copied nothing, and the imap-sink row is either verified exact or says
    plainly that the plugin is not there;
  - the limit reader read every message and byte;
  - mbsync and OfflineIMAP ran (their verdicts, e.g. "altered", are results,
    not failures); when they are not installed the test says they were skipped.
  - the bench puts back the VM's memory reclaim settings it held off;
  - every run has the machine's idle share (0..1) beside its times.
A second test feeds the verification wrong trees, so it is known to catch a
missing, altered or flag-changed message; a third holds and restores reclaim
settings on a sysfs tree of its own.
"""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import socket
import tempfile
import threading
import time
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "bench"))

from harness import testcase, verify  # noqa: E402
from gwbench import check, delayproxy, hostmem, measure, report, tools  # noqa: E402
from gwbench import main as gwmain  # noqa: E402

GODWIT_ROWS = [
    "godwit %s, %s, %s" % (conns, tls, fsync)
    for conns in ("1 conn", "default") for tls in ("plain", "TLS")
    for fsync in ("fsync", "no fsync")
] + ["godwit re-run, no change", "godwit 100 msgs, default"]
IMAP_SINK_ROW = "godwit -> Dovecot (imap sink)"


class BenchQuick(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        env = testcase.godwit_env()
        cls.tmp = tempfile.mkdtemp(prefix="godwit-bench-test-")
        out = os.path.join(cls.tmp, "results.json")
        argv = [sys.executable, os.path.join(REPO, "bench", "run"), "--quick", "--no-install",
                "--godwit-bin", env["bin"], "--plugin-dir", env["plugin_dir"],
                "--build-dir", env["build_dir"], "--workdir", os.path.join(cls.tmp, "work"),
                "--json", out]
        cls.reclaim_before = reclaim_settings()
        cls.proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        cls.reclaim_after = reclaim_settings()
        cls.output = cls.proc.stdout + cls.proc.stderr
        cls.results = None
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                cls.results = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def rows(self):
        self.assertIsNotNone(self.results, "bench/run wrote no results:\n" + self.output[-6000:])
        return {row["case"]: row for row in self.results["rows"]}

    def test_exit_status_and_corpus(self):
        self.assertEqual(0, self.proc.returncode, self.output[-8000:])
        rows = self.rows()
        self.assertEqual(300, rows["limit 1 conn, plain"]["messages"])
        self.assertEqual(100, rows["godwit 100 msgs, default"]["messages"])

    def test_reclaim_settings_restored(self):
        self.assertEqual(self.reclaim_before, self.reclaim_after)
        self.rows()
        self.assertIn("host memory reclaim", self.results["header"])

    def test_godwit_rows_verified_exact(self):
        rows = self.rows()
        for label in GODWIT_ROWS:
            row = rows[label]
            with self.subTest(row=label):
                self.assertTrue(row["available"], row["unavailable"])
                self.assertIsNone(row["error"])
                self.assertEqual(1, len(row["verdicts"]))
                self.assertEqual(["exact"], [v["text"] for v in row["verdicts"]],
                                 json.dumps(row["verdicts"], indent=1)[:4000])
                self.assertEqual([0], row["exit"])

    def test_imap_sink_row_is_exact_or_says_why_not(self):
        row = self.rows()[IMAP_SINK_ROW]
        if row["available"]:
            self.assertEqual(["exact"], [v["text"] for v in row["verdicts"]], row["verdict"])
        else:
            self.assertEqual("not available: no imap sink plugin (gw-sink-imap.so not built)",
                             row["unavailable"])
            self.assertEqual([], row["wall"])  # never a number for a row that did not run

    def test_imapsync_row_says_why_it_did_not_run(self):
        # Not packaged in Debian 12: without --imapsync/$IMAPSYNC the row has no numbers.
        row = self.rows()["imapsync -> Dovecot"]
        if os.environ.get("IMAPSYNC"):
            self.assertTrue(row["available"], row["unavailable"])
            return
        self.assertEqual("not available: imapsync is not packaged in Debian 12 (--imapsync PATH)",
                         row["unavailable"])
        self.assertEqual([], row["wall"])

    def test_limit_reader_read_everything(self):
        rows = self.rows()
        for label in ("limit 1 conn, plain", "limit 1 conn, TLS", "limit 100 msgs, plain"):
            self.assertEqual("read all (count, bytes)", rows[label]["verdict"], label)
        for label in ("limit+store 1 conn, plain", "limit+store 1 conn, TLS",
                      "limit+store 100 msgs, plain", "limit+store+sha256 1 conn, plain",
                      "limit+store+sha256 1 conn, TLS", "limit+store+sync 1 conn, plain",
                      "limit+store+sync 1 conn, TLS", "limit+store+sync+sha256 1 conn, plain",
                      "limit+store+sync+sha256 1 conn, TLS",
                      "limit+store+batches+sha256 1 conn, plain",
                      "limit+store+batches+sha256 1 conn, TLS"):
            self.assertEqual("stored all (hashes)", rows[label]["verdict"], label)
        self.assertEqual(100, rows["limit+store 100 msgs, plain"]["messages"])

    def test_machine_idle_measured_for_every_run(self):
        rows = self.rows()
        self.assertIn("idle %", self.proc.stdout)
        for label, row in rows.items():
            with self.subTest(row=label):
                self.assertEqual(len(row["wall"]), len(row["machine_idle"]))
                for share in row["machine_idle"]:
                    self.assertTrue(0.0 <= share <= 1.0, share)

    def test_reference_tools_ran_when_installed(self):
        rows = self.rows()
        for tool, exe, labels in (
                ("mbsync", "mbsync", ("mbsync plain, FSync no", "mbsync plain, FSync yes",
                                      "mbsync TLS, FSync no")),
                ("OfflineIMAP", "offlineimap", ("offlineimap plain",))):
            if not shutil.which(exe):
                sys.stderr.write("test_bench_small: %s not installed, its rows are skipped "
                                 "(apt-get install %s)\n" % (tool, "isync" if exe == "mbsync"
                                                             else "offlineimap3"))
                for label in labels:
                    self.assertIn("not installed", rows[label]["unavailable"])
                continue
            for label in labels:
                with self.subTest(row=label):
                    row = rows[label]
                    self.assertIsNone(row["error"])
                    self.assertEqual(1, len(row["verdicts"]))
                    self.assertEqual([0], row["exit"], row["verdict"])
                    # mbsync stores every message with an X-TUID header and LF line ends.
                    if tool == "mbsync":
                        self.assertIn("300 altered (X-TUID added, line ends CRLF->LF)",
                                      row["verdict"])


def reclaim_settings():
    """The knobs hostmem may change, as this machine has them now."""
    paths = glob.glob(hostmem._KDAMONDS) + glob.glob(os.path.join(hostmem._REPORTING, "*"))
    out = {}
    for path in paths:
        if os.path.basename(path) in ("state", "min_free_ms", "max_waiting_mib"):
            with open(path, encoding="ascii") as f:
                out[path] = f.read().strip()
    return out


class ReclaimHoldOnOwnTree(unittest.TestCase):
    """hostmem on a sysfs-like tree: what it changes, what it says, what it restores."""

    def setUp(self):
        root = tempfile.mkdtemp(prefix="godwit-bench-sysfs-")
        self.addCleanup(shutil.rmtree, root, True)
        self.files = {}
        for rel, value in (("kdamonds/0/state", "on"), ("kdamonds/1/state", "off"),
                           ("page_reporting/min_free_ms", "0"),
                           ("page_reporting/max_waiting_mib", "1024"),
                           ("page_reporting/page_reporting_order", "9")):
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="ascii") as f:
                f.write(value + "\n")
            self.files[rel] = path
        patches = {"_KDAMONDS": os.path.join(root, "kdamonds", "*", "state"),
                   "_REPORTING": os.path.join(root, "page_reporting")}
        for name, value in patches.items():
            self.addCleanup(setattr, hostmem, name, getattr(hostmem, name))
            setattr(hostmem, name, value)
        # Like the kernel, refuse a wait above its cap (300 s on the bench VM).
        real_write = hostmem._write

        def capped_write(path, value):
            if path.endswith("min_free_ms") and int(value) > 300_000:
                raise OSError(22, "Invalid argument")
            real_write(path, value)
        self.addCleanup(setattr, hostmem, "_write", real_write)
        hostmem._write = capped_write

    def values(self):
        out = {}
        for rel, path in self.files.items():
            with open(path, encoding="ascii") as f:
                out[rel] = f.read().strip()
        return out

    def test_hold_then_restore(self):
        self.assertEqual("left on (--no-hold-reclaim): kdamond 0, free page reporting; the same "
                         "run may take twice the time (PROFILE.md)", hostmem.left_alone())
        before = self.values()
        hold = hostmem.ReclaimHold().hold()
        held = dict(before, **{"kdamonds/0/state": "off", "page_reporting/min_free_ms": "300000",
                               "page_reporting/max_waiting_mib": "1048576"})
        self.assertEqual(held, self.values())
        text = ("held off for the run, restored at exit: kdamond 0 on -> off, min_free_ms 0 -> "
                "300000, max_waiting_mib 1024 -> 1048576")
        self.assertEqual(text, hold.describe())
        hold.restore()
        hold.restore()  # twice is harmless
        self.assertEqual(before, self.values())
        self.assertEqual(text, hold.describe())

    def test_nothing_to_hold(self):
        for rel in ("page_reporting/min_free_ms", "page_reporting/max_waiting_mib",
                    "page_reporting/page_reporting_order"):
            os.unlink(self.files[rel])
        with open(self.files["kdamonds/0/state"], "w", encoding="ascii") as f:
            f.write("off\n")
        hold = hostmem.ReclaimHold().hold()
        self.assertEqual([], hold.changes)
        self.assertEqual("nothing to hold off (no kdamond on, no free page reporting knobs)",
                         hold.describe())
        self.assertEqual("none found", hostmem.left_alone())


class BenchServe(unittest.TestCase):
    """bench/run --serve: one Dovecot held for profiling. Its scripts run godwit and the
    limit reader on the held mailbox, fresh.sh starts a case over, and SIGTERM ends it
    with exit 0, Dovecot stopped."""

    def test_serve_runs_cases_then_stops(self):
        env = testcase.godwit_env()
        with tempfile.TemporaryDirectory(prefix="godwit-bench-serve-") as tmp:
            argv = [sys.executable, os.path.join(REPO, "bench", "run"), "--serve", "--quick",
                    "--no-install", "--godwit-bin", env["bin"], "--plugin-dir",
                    env["plugin_dir"], "--build-dir", env["build_dir"], "--workdir",
                    os.path.join(tmp, "work")]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            try:
                scripts, dovecot_pid, dovecot_root, out = {}, None, None, []
                deadline = time.monotonic() + 300
                for line in proc.stdout:
                    out.append(line)
                    if line.startswith("bench: dovecot pid "):
                        dovecot_pid = int(line.split()[3])
                        dovecot_root = line.rsplit(" root ", 1)[1].strip()
                    if "{fresh,run}.sh" in line:
                        label, path = line.rsplit(None, 1)
                        scripts[label.strip()] = path[:-len("/{fresh,run}.sh")]
                    if "serving until interrupted" in line or time.monotonic() > deadline:
                        break
                self.assertIn("bench: serving until interrupted (Ctrl-C or SIGTERM)\n", out,
                              "".join(out)[-4000:])
                for label in ("godwit 1 conn, plain, fsync", "limit 1 conn, plain",
                              "godwit -> Dovecot (imap sink)", "limit+append 2 conn, plain"):
                    self.assertIn(label, scripts, "".join(out)[-4000:])
                sink_mail = os.path.join(dovecot_root, "home", "sink1")
                for label in ("godwit 1 conn, plain, fsync", "godwit -> Dovecot (imap sink)"):
                    godwit = scripts[label]
                    for attempt in (1, 2):  # the second after fresh.sh: everything again
                        subprocess.run(["sh", os.path.join(godwit, "fresh.sh")], check=True)
                        r = subprocess.run(["sh", os.path.join(godwit, "run.sh")],
                                           capture_output=True, text=True, timeout=120)
                        self.assertEqual(0, r.returncode, r.stderr[-2000:])
                        self.assertIn("messages:  300 migrated, 0 already present, 0 failed",
                                      r.stdout, (label, attempt, r.stdout))
                # fresh.sh emptied the imap sink's destination user: one copy of each.
                self.assertEqual(300, sum(len(files) for path, _dirs, files in os.walk(sink_mail)
                                          if os.path.basename(path) in ("cur", "new")))
                for label in ("limit 1 conn, plain", "limit+append 2 conn, plain"):
                    limit = scripts[label]
                    subprocess.run(["sh", os.path.join(limit, "fresh.sh")], check=True)
                    r = subprocess.run(["sh", os.path.join(limit, "run.sh")],
                                       capture_output=True, text=True, timeout=120)
                    self.assertEqual(0, r.returncode, r.stderr[-2000:])
                    self.assertRegex(r.stdout, r"messages=300 bytes=[1-9]\d*")
            finally:
                proc.terminate()
                rest, _ = proc.communicate(timeout=120)
            self.assertEqual(0, proc.returncode, rest[-4000:])
            self.assertIsNotNone(dovecot_pid)
            self.assertFalse(os.path.exists("/proc/%d" % dovecot_pid), "Dovecot still runs")


class OneBenchAtATime(unittest.TestCase):
    """A second bench/run on the machine stops at once and says who holds it."""

    def test_second_run_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "lock")
            held, _ = gwmain.machine_lock(path)
            self.assertIsNotNone(held)
            try:
                self.assertEqual((None, str(os.getpid())), gwmain.machine_lock(path))
                env = dict(os.environ, GODWIT_BENCH_LOCK=path)
                r = subprocess.run([sys.executable, os.path.join(REPO, "bench", "run"),
                                    "--quick", "--no-install"], capture_output=True, text=True,
                                   env=env, timeout=60)
                self.assertEqual(2, r.returncode, r.stderr)
                self.assertIn("bench: another bench/run is running on this machine (pid %d)"
                              % os.getpid(), r.stdout + r.stderr)
            finally:
                held.close()
            again, _ = gwmain.machine_lock(path)
            self.assertIsNotNone(again)
            again.close()


class InterleavedRepetitions(unittest.TestCase):
    """bench/run runs repetition r of every case before repetition r + 1 of any."""

    class Case:
        def __init__(self, order, label, fail_setup=False):
            self.order, self.label, self.fail_setup = order, label, fail_setup
            self.tool = "fake"
            self.workdir = os.path.join(tempfile.gettempdir(), "gwbench-fake-" + label)

        def available(self):
            return None

        def setup(self):
            if self.fail_setup:
                raise RuntimeError("no setup")

        def prepare(self, rep):
            self.order.append((self.label, rep))
            return types.SimpleNamespace(argv=["true"], env=None, cwd=None)

        def before_run(self):
            pass

        def after_run(self):
            pass

        def verify(self, rep, sample):
            return check.Verdict(True, "ok")

    def test_rounds(self):
        order = []
        cases = [self.Case(order, "a"), self.Case(order, "b"), self.Case(order, "once"),
                 self.Case(order, "broken", fail_setup=True)]
        bench = types.SimpleNamespace(args=types.SimpleNamespace(keep=True))
        results = gwmain.run_cases(bench, cases, lambda c: 1 if c.label == "once" else 3)
        self.assertEqual([("a", 1), ("b", 1), ("once", 1), ("a", 2), ("b", 2), ("a", 3),
                          ("b", 3)], order)
        self.assertEqual([3, 3, 1, 0], [len(r.samples) for r in results])
        self.assertEqual("RuntimeError: no setup", results[3].error)


class RssGrowthTarget(unittest.TestCase):
    """The memory growth target compares the sizes' median peaks, as every other row does."""

    @staticmethod
    def row(messages, peaks_kib):
        source = types.SimpleNamespace(count=lambda: messages, total_bytes=lambda: messages)
        case = types.SimpleNamespace(label="godwit %d msgs, RSS" % messages, tool="godwit",
                                     user="rss%d" % messages, source=source)
        result = report.Result(case)
        for kib in peaks_kib:
            result.add(measure.Sample(1.0, 1.0, kib, 0, "", ""), check.Verdict(True, "exact"))
        return result

    def test_medians(self):
        results = [self.row(5000, [21000, 20000, 22000]), self.row(80000, [21500, 23500, 21600])]
        target = [t for t in report.targets(results) if t[0].startswith("peak RSS not growing")]
        # The largest peaks alone would be 1.5 MiB apart.
        self.assertEqual([("peak RSS not growing with mailbox size (<= 1 MiB)",
                           "5000 msgs 20.5 MiB, 80000 msgs 21.1 MiB; +0.6 MiB, 8 bytes a "
                           "message; medians of 3 run(s) each", "PASS")], target)


class RatioTargetsNameTheirFloors(unittest.TestCase):
    """Each ratio target also says what the minimal reader-writer reached against the same
    yardstick in the same run: without fsync the store and the store that hashes (godwit
    hashes every message whatever fsync says), with fsync also the store durable batch by
    batch (each floor its own row); against mbsync too."""

    @staticmethod
    def row(case, wall):
        result = report.Result(case)
        result.add(measure.Sample(wall, 1.0, 1000, 0, "", ""), check.Verdict(True, "exact"))
        return result

    def results(self):
        L, G, M = tools.LimitCase, tools.GodwitCase, tools.MbsyncCase
        mailbox = types.SimpleNamespace(count=lambda: 20000, total_bytes=lambda: 10 ** 9)
        B = types.SimpleNamespace(sources={"alice": mailbox})
        return [self.row(L(B, "limit 1 conn, plain", "limit"), 1.0),
                self.row(L(B, "limit+store 1 conn, plain", "limit", store=True), 1.05),
                self.row(L(B, "limit+store+sha256 1 conn, plain", "limit", store=True,
                           sha256=True), 1.25),
                self.row(L(B, "limit+store+sync+sha256 2 conn, plain", "limit", store=True,
                           sync=True, sha256=True, connections=2), 1.6),
                self.row(L(B, "limit+store+batches+sha256 2 conn, plain", "limit", store=True,
                           sha256=True, batch=1024, connections=2), 1.8),
                self.row(M(B, "mbsync plain, FSync no", "mbsync"), 2.0),
                self.row(G(B, "godwit 1 conn, plain, no fsync", "godwit", fsync=False), 1.6),
                self.row(G(B, "godwit default, plain, fsync", "godwit", connections=2), 1.9)]

    def test_floors(self):
        targets = {what: (text, verdict) for what, text, verdict in
                   report.targets(self.results())}
        self.assertEqual(("0.62 x (1.60 s vs 1.00 s); limit+store: 0.95 x; +sha256: 0.80 x",
                          "FAIL"),
                         targets["godwit 1 conn, plain, no fsync >= 0.90 x limit (same conns)"])
        self.assertEqual(("1.05 x (1.90 s vs 2.00 s); limit+store: not measured; "
                          "limit+store+sync: not measured; +sha256: 1.25 x; +batches: 1.11 x",
                          "FAIL"),
                         targets["godwit default, plain, fsync >= 3.00 x mbsync FSync no"])


class MachineIdleShare(unittest.TestCase):
    """The idle column: the share of all cores' ticks spent idle between two reads."""

    def test_share(self):
        self.assertEqual(0.25, measure._idle_share((100, 1000), (150, 1200)))

    def test_unreadable_or_no_time_passed_is_none(self):
        self.assertIsNone(measure._idle_share(None, (150, 1200)))
        self.assertIsNone(measure._idle_share((100, 1000), None))
        self.assertIsNone(measure._idle_share((100, 1000), (100, 1000)))

    def test_reads_this_machine(self):
        idle, total = measure._cpu_jiffies()
        self.assertLess(0, idle)
        self.assertLess(idle, total)


class DelayProxyAddsRoundTrip(unittest.TestCase):
    """--rtt's proxy: every byte through unchanged, both ways, each way late by half the
    round trip, and the end of the stream passed on."""

    def setUp(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.echoed = threading.Thread(target=self.echo_once, daemon=True)
        self.echoed.start()
        self.proxy = delayproxy.DelayProxy(self.server.getsockname()[1], 200).start()

    def tearDown(self):
        self.proxy.stop()
        self.server.close()

    def echo_once(self):
        conn, _ = self.server.accept()
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)

    def test_bytes_round_trip_and_end_of_stream(self):
        payload = bytes(range(256)) * 8192  # 2 MiB, every byte value
        with socket.create_connection(("127.0.0.1", self.proxy.port)) as c:
            began = time.monotonic()
            c.sendall(b"x")
            self.assertEqual(b"x", c.recv(1))
            round_trip = time.monotonic() - began
            sender = threading.Thread(target=lambda: (c.sendall(payload),
                                                      c.shutdown(socket.SHUT_WR)))
            sender.start()
            back = bytearray()
            while True:
                data = c.recv(65536)
                if not data:
                    break
                back += data
            sender.join()
        self.assertGreaterEqual(round_trip, 0.2)
        self.assertLess(round_trip, 2.0)
        self.assertEqual(hashlib.sha256(payload).hexdigest(), hashlib.sha256(back).hexdigest())


class VerificationCatchesWrongRuns(unittest.TestCase):
    """The checks bench/run relies on fail on missing, changed and flag-changed mail."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="godwit-bench-check-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.messages = [b"Subject: one\r\nMessage-ID: <1@x>\r\n\r\nbody one\r\n",
                         b"Subject: two\r\nMessage-ID: <2@x>\r\n\r\nbody two\r\n"]
        self.source = verify.Manifest("/")
        self.source["INBOX"] = [
            {"uid": i + 1, "sha256": hashlib.sha256(m).hexdigest(), "flags": ("\\Seen",),
             "internaldate": 1_500_000_000 + i, "size": len(m)}
            for i, m in enumerate(self.messages)]

    def write(self, name, data, date):
        os.makedirs(os.path.join(self.root, "cur"), exist_ok=True)
        path = os.path.join(self.root, "cur", name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (date, date))

    def test_exact_tree(self):
        for i, m in enumerate(self.messages):
            self.write("%d.x:2,S" % i, m, 1_500_000_000 + i)
        self.assertEqual("exact", check.verify_tool_maildir(self.source, self.root).text)
        verdict = check.verify_godwit_maildir(self.source, self.root)
        self.assertEqual(("exact", True), (verdict.text, verdict.ok))

    def test_stored_files_are_compared_by_hash(self):
        for i, m in enumerate(self.messages):
            self.write("0.%d" % i, m, 1_500_000_000)
        cur = os.path.join(self.root, "cur")
        self.assertEqual((True, "stored all (hashes)"),
                         (lambda v: (v.ok, v.text))(check.verify_stored(self.source, cur)))
        self.write("0.0", self.messages[0] + b"x", 1_500_000_000)
        verdict = check.verify_stored(self.source, cur)
        self.assertEqual((False, "WRONG: stored %d files, 1 differ from the source's %d messages"
                          % (len(self.messages), len(self.messages))),
                         (verdict.ok, verdict.text))

    def test_missing_message_is_wrong(self):
        self.write("0.x:2,S", self.messages[0], 1_500_000_000)
        verdict = check.verify_tool_maildir(self.source, self.root)
        self.assertEqual((False, "WRONG: 1 missing"), (verdict.ok, verdict.text))
        verdict = check.verify_godwit_maildir(self.source, self.root)
        self.assertEqual((False, "WRONG: 1 missing"), (verdict.ok, verdict.text))

    def test_changed_bytes_are_wrong_and_x_tuid_is_altered(self):
        self.write("0.x:2,S", self.messages[0].replace(b"body one", b"body 1!!"), 1_500_000_000)
        tuid = self.messages[1].replace(b"\r\n\r\n", b"\r\nX-TUID: abcdefgh\r\n\r\n")
        self.write("1.x:2,S", tuid.replace(b"\r\n", b"\n"), 1_500_000_001)
        verdict = check.verify_tool_maildir(self.source, self.root)
        self.assertEqual((False, "WRONG: 1 hash-mismatch; 1 altered (X-TUID added, line ends "
                                 "CRLF->LF)"), (verdict.ok, verdict.text))

    def test_flags_and_dates_are_exact_for_godwit(self):
        self.write("0.x:2,", self.messages[0], 1_500_000_000)
        self.write("1.x:2,S", self.messages[1], 1_400_000_000)
        verdict = check.verify_godwit_maildir(self.source, self.root)
        self.assertEqual((False, "WRONG: 1 date-mismatch, 1 flag-mismatch"),
                         (verdict.ok, verdict.text))
        verdict = check.verify_tool_maildir(self.source, self.root)
        self.assertEqual((True, "bytes exact; 1 flags differ; 1 dates lost"),
                         (verdict.ok, verdict.text))


if __name__ == "__main__":
    testcase.main()
