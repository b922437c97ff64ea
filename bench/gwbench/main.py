"""bench/run: set up, run every case, print the table. See bench/README.md."""

import argparse
import datetime
import fcntl
import json
import os
import platform
import shutil
import shlex
import signal
import subprocess
import sys
import tempfile
import time

from . import (BENCH_DIR, REPO, check, corpus, delayproxy, hostmem, measure, report, scratch,
               tools)

from harness import dovecot, verify  # noqa: E402

DEBIAN_PACKAGES = (("mbsync", "isync"), ("offlineimap", "offlineimap3"),
                   (measure.GNU_TIME, "time"))
QUICK_MESSAGES, QUICK_SMALL = 300, 100


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=(
        "Benchmark godwit against a minimal reader (limit), mbsync and OfflineIMAP on a private "
        "Dovecot; every run is verified. See bench/README.md."))
    p.add_argument("--messages", type=int, default=None, help="corpus size (default 20000)")
    p.add_argument("--small-messages", type=int, default=None,
                   help="mailbox of the fixed-overhead run (default 1000)")
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions per case; the median counts (default 3)")
    p.add_argument("--slow-reps", type=int, default=None,
                   help="repetitions for OfflineIMAP and imapsync, for a quicker run (default: "
                   "--reps)")
    p.add_argument("--quick", action="store_true", help="CI size: %d messages, %d in the small "
                   "mailbox, 1 repetition" % (QUICK_MESSAGES, QUICK_SMALL))
    p.add_argument("--only", default="", help="comma list of tools: limit,mbsync,offlineimap,"
                   "imapsync,godwit")
    p.add_argument("--imapsync", default=os.environ.get("IMAPSYNC"),
                   help="imapsync script for the IMAP -> IMAP row (not packaged in Debian 12; "
                   "default $IMAPSYNC)")
    p.add_argument("--connections", type=int, default=None,
                   help="connections of the N-connection limit rows (default: what godwit's "
                   "default run used, measured in Dovecot's log; 4 without godwit)")
    p.add_argument("--seed", type=int, default=1, help="corpus seed")
    p.add_argument("--rtt", type=float, default=0, metavar="MS",
                   help="add MS milliseconds of round trip between every client and Dovecot "
                   "(a proxy: gwbench/delayproxy.py); what a network costs per round trip")
    p.add_argument("--rss-sizes", default="", help="comma list of mailbox sizes (e.g. "
                   "5000,20000,80000): one godwit default run on each, same corpus mix, for "
                   "peak RSS against mailbox size")
    p.add_argument("--folders", type=int, default=len(corpus.FOLDERS),
                   help="spread the mail over the first N of the 30 folders (1: all in INBOX)")
    p.add_argument("--no-shared-corpus", action="store_true", help="leave ../shared/corpus out")
    p.add_argument("--godwit-bin", default=os.environ.get("GODWIT_BIN"),
                   help="godwit executable (default: build it in <repo>/build-bench)")
    p.add_argument("--plugin-dir", default=os.environ.get("GODWIT_PLUGIN_DIR"))
    p.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"),
                   help="where godwit (Release) and limit are built (default <repo>/build-bench)")
    p.add_argument("--no-install", action="store_true", help="never call apt-get")
    p.add_argument("--workdir", default=None, help="destinations go here (default: a scratch "
                   "file system, see --no-scratch-fs)")
    p.add_argument("--no-scratch-fs", action="store_true", help="write the destinations into a "
                   "temporary directory instead of a loop-mounted journaled ext4 (scratch.py)")
    p.add_argument("--no-hold-reclaim", action="store_true", help="leave the VM's memory "
                   "reclaim for its host on (DAMON, free page reporting; see hostmem.py)")
    p.add_argument("--keep", action="store_true", help="keep the work directory and Dovecot root")
    p.add_argument("--json", default=None, help="also write the results as JSON to this file")
    p.add_argument("--serve", action="store_true", help="set up Dovecot and the corpus, write "
                   "a run script for each godwit and limit case on the main mailbox, print "
                   "them and wait until interrupted, then clean up: for profiling and A/B of "
                   "builds against one held Dovecot (PROFILE.md)")
    args = p.parse_args(argv)
    # --quick changes the defaults; explicit values still win.
    defaults = (QUICK_MESSAGES, QUICK_SMALL, 1) if args.quick else (20000, 1000, 3)
    for name, value in zip(("messages", "small_messages", "reps"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.slow_reps is None:
        args.slow_reps = args.reps
    args.only = {t.strip() for t in args.only.split(",") if t.strip()}
    args.rss_sizes = sorted({int(n) for n in args.rss_sizes.split(",") if n.strip()})
    return args


def log(text):
    sys.stdout.write("bench: %s\n" % text)
    sys.stdout.flush()


def ensure_packages(no_install):
    missing = [pkg for exe, pkg in DEBIAN_PACKAGES if not shutil.which(exe)]
    if not missing:
        return
    if no_install or os.geteuid() != 0 or not shutil.which("apt-get"):
        log("not installing %s (--no-install, not root or no apt-get); those rows are skipped"
            % " ".join(missing))
        return
    log("installing from Debian: %s" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends"] + missing,
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        log("apt-get install failed (%d); those rows are skipped:\n%s"
            % (result.returncode, result.stderr[-1500:]))


def build_limit(build_dir):
    """bench/limit.c -> <build>/bench/limit, rebuilt when the source is newer."""
    source = os.path.join(BENCH_DIR, "limit.c")
    target = os.path.join(build_dir, "bench", "limit")
    if os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(source):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    cc = os.environ.get("CC", "cc")
    result = subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", source,
                             "-o", target, "-lssl", "-lcrypto", "-lpthread"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        log("building limit failed:\n%s" % result.stderr[-2000:])
        return None
    return target


def find_godwit(args):
    """(godwit binary, plugin dir, None) or (None, None, reason it is not available)."""
    binary = args.godwit_bin or os.path.join(args.build_dir, "bin", "godwit")
    if not args.godwit_bin:
        log("building godwit (Release) in %s" % args.build_dir)
        steps = [["cmake", "-S", REPO, "-B", args.build_dir, "-DCMAKE_BUILD_TYPE=Release"],
                 ["cmake", "--build", args.build_dir, "-j2", "--target", "godwit_cli",
                  "gw-source-imap", "gw-sink-maildir"]]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True)
            if result.returncode != 0:
                lines = (result.stdout + result.stderr).strip().splitlines() or ["?"]
                first = next((l for l in lines if "error" in l or "undefined" in l), lines[-1])
                return None, None, "not available: godwit build failed: %s" % first.strip()
        # The imap sink is optional: build it when its target exists.
        subprocess.run(["cmake", "--build", args.build_dir, "-j2", "--target", "gw-sink-imap"],
                       capture_output=True)
    if not os.access(binary, os.X_OK):
        return None, None, "not available: no godwit executable at %s" % binary
    plugins = args.plugin_dir or os.path.join(os.path.dirname(os.path.dirname(binary)), "plugins")
    return binary, plugins, None


class Bench:
    """Everything the cases share: the Dovecot, the corpora and their manifests, tools."""

    def __init__(self, args, dv, workdir):
        self.args, self.dv, self.workdir = args, dv, workdir
        self.sources = {}
        self.corpora = {}
        self.limit_bin = None
        self.godwit_bin = self.plugin_dir = None
        self.godwit_missing = None
        self.appended_sources = {}  # user -> manifest as a Dovecot destination stores it
        self.proxies = {}  # tls -> DelayProxy, with --rtt

    def port_of(self, tls):
        """Where the cases connect: Dovecot's port, or the delay proxy in front of it."""
        if tls in self.proxies:
            return self.proxies[tls].port
        return self.dv.port_tls if tls else self.dv.port_plain

    def add_round_trip(self, rtt_ms):
        for tls in (False, True):
            port = self.dv.port_tls if tls else self.dv.port_plain
            self.proxies[tls] = delayproxy.DelayProxy(port, rtt_ms).start()
            log("round trip: " + self.proxies[tls].describe())

    def stop_proxies(self):
        for proxy in self.proxies.values():
            proxy.stop()

    def seed(self, user, count, seed):
        began = time.monotonic()
        plan = corpus.CorpusPlan(count=count, seed=seed, folders=self.args.folders,
                                 use_shared_corpus=not self.args.no_shared_corpus)
        written = corpus.write_user_maildir(self.dv, user, plan, out=sys.stdout)
        log("corpus %s: %s; shared corpus: %s (%.1f s)" % (
            user, written.summary(), written.corpus_status, time.monotonic() - began))
        # The source manifest is what Dovecot serves (this also builds its indexes and
        # warms the page cache before anything is timed); it must equal what was written.
        client = self.dv.imap(user)
        try:
            served = verify.read_server(client)
        finally:
            client.logout()
        diffs = verify.compare(written.manifest, served)
        if diffs or served.stray:
            raise RuntimeError("Dovecot does not serve the corpus as written:\n%s\n%s" % (
                verify.format_differences(diffs), served.stray[:10]))
        self.sources[user], self.corpora[user] = served, written
        self.appended_sources[user] = appended_manifest(served, written.manifest)

    def run_untimed(self, command):
        return measure.run_timed(command.argv, env=command.env, cwd=command.cwd)


def appended_manifest(served, written):
    """@served with each message's bytes as the bench's Dovecot keeps them after an APPEND
    (mail_save_crlf = no normalises bare CRs: tests/harness/mailgen.served_by_dovecot):
    what a Dovecot -> Dovecot run must produce."""
    after = {m["sha256"]: (m["appended_sha256"], m["appended_size"])
             for msgs in written.values() for m in msgs}
    out = verify.Manifest(served.delimiter)
    out.special_use, out.noselect = dict(served.special_use), set(served.noselect)
    for folder, msgs in served.items():
        out[folder] = [dict(m, sha256=after[m["sha256"]][0], size=after[m["sha256"]][1])
                       for m in msgs]
    return out


def godwit_batch(connections):
    """Messages in one of godwit's batches into its maildir sink: limits.batch_messages
    (4,096 by default, docs/profile.md) shared by the mailbox's connections, two batches
    in flight on each (the sink flushes in the background)."""
    return 4096 // (2 * connections)


def make_cases(bench, args):
    only = args.only or {"limit", "mbsync", "offlineimap", "imapsync", "godwit"}
    B = bench
    cases = []
    if "limit" in only:
        cases += [tools.LimitCase(B, "limit 1 conn, plain", "limit"),
                  tools.LimitCase(B, "limit 1 conn, TLS", "limit", tls=True),
                  tools.LimitCase(B, "limit+store 1 conn, plain", "limit", store=True),
                  tools.LimitCase(B, "limit+store 1 conn, TLS", "limit", tls=True, store=True),
                  # ... and fingerprinted as godwit's state requires: the floor for the
                  # rows without fsync, which hash every message all the same.
                  tools.LimitCase(B, "limit+store+sha256 1 conn, plain", "limit", store=True,
                                  sha256=True),
                  tools.LimitCase(B, "limit+store+sha256 1 conn, TLS", "limit", tls=True,
                                  store=True, sha256=True),
                  # ... and durably: the floor for the rows with fsync.
                  tools.LimitCase(B, "limit+store+sync 1 conn, plain", "limit", store=True,
                                  sync=True),
                  tools.LimitCase(B, "limit+store+sync 1 conn, TLS", "limit", tls=True,
                                  store=True, sync=True),
                  # ... durably and fingerprinted: the floor for the rows with fsync.
                  tools.LimitCase(B, "limit+store+sync+sha256 1 conn, plain", "limit",
                                  store=True, sync=True, sha256=True),
                  tools.LimitCase(B, "limit+store+sync+sha256 1 conn, TLS", "limit", tls=True,
                                  store=True, sync=True, sha256=True),
                  # ... and durable batch by batch, renamed into cur/ only then, as
                  # godwit's sink commits: the floor of its protocol, state aside.
                  tools.LimitCase(B, "limit+store+batches+sha256 1 conn, plain", "limit",
                                  store=True, sha256=True, batch=godwit_batch(1)),
                  tools.LimitCase(B, "limit+store+batches+sha256 1 conn, TLS", "limit",
                                  tls=True, store=True, sha256=True, batch=godwit_batch(1)),
                  # The same floor for the small mailbox: what fixed overhead the work
                  # itself has, beside godwit's.
                  tools.LimitCase(B, "limit %d msgs, plain" % args.small_messages, "limit",
                                  user="small"),
                  tools.LimitCase(B, "limit+store %d msgs, plain" % args.small_messages,
                                  "limit", user="small", store=True),
                  # The floor of IMAP -> IMAP, for the imap sink and imapsync rows.
                  tools.LimitCase(B, "limit+append 1 conn, plain", "limit", append=True),
                  tools.LimitCase(B, "limit+append 2 conn, plain", "limit", append=True,
                                  connections=2)]
    if "mbsync" in only:
        cases += [tools.MbsyncCase(B, "mbsync plain, FSync no", "mbsync"),
                  tools.MbsyncCase(B, "mbsync plain, FSync yes", "mbsync", fsync=True),
                  tools.MbsyncCase(B, "mbsync TLS, FSync no", "mbsync", tls=True)]
    if "offlineimap" in only:
        cases += [tools.OfflineImapCase(B, "offlineimap plain", "offlineimap")]
    if "imapsync" in only:
        cases += [tools.ImapsyncCase(B, "imapsync -> Dovecot", "imapsync")]
    if "godwit" in only:
        for conns, what in ((1, "1 conn"), (None, "default")):
            for tls in (False, True):
                for fsync in (True, False):
                    label = "godwit %s, %s, %s" % (what, "TLS" if tls else "plain",
                                                   "fsync" if fsync else "no fsync")
                    cases.append(tools.GodwitCase(B, label, "godwit", tls=tls,
                                                  connections=conns, fsync=fsync))
        cases += [
            tools.GodwitRerunCase(B, "godwit re-run, no change", "godwit", connections=None,
                                  ratios=False),
            tools.GodwitCase(B, "godwit %d msgs, default" % args.small_messages, "godwit",
                             user="small", connections=None),
            tools.GodwitImapSinkCase(B, "godwit -> Dovecot (imap sink)", "godwit",
                                     connections=None),
        ]
    return cases


def limit_n_cases(bench, args, results, unmeasured=4):
    """The N-connection limit rows, N = what godwit's default runs used (or --connections;
    @unmeasured when no godwit run was measured)."""
    n = args.connections
    if n is None:
        used = [max(r.case.measured_connections) for r in results
                if r.case.tool == "godwit" and r.case.connections is None
                and r.case.user == "alice" and r.case.measured_connections]
        n = max(used) if used else unmeasured
    if n <= 1:
        return []
    return [tools.LimitCase(bench, "limit %d conn, plain" % n, "limit", connections=n),
            tools.LimitCase(bench, "limit %d conn, TLS" % n, "limit", tls=True, connections=n),
            tools.LimitCase(bench, "limit+store %d conn, plain" % n, "limit", connections=n,
                            store=True),
            tools.LimitCase(bench, "limit+store %d conn, TLS" % n, "limit", tls=True,
                            connections=n, store=True),
            tools.LimitCase(bench, "limit+store+sha256 %d conn, plain" % n, "limit",
                            connections=n, store=True, sha256=True),
            tools.LimitCase(bench, "limit+store+sha256 %d conn, TLS" % n, "limit", tls=True,
                            connections=n, store=True, sha256=True),
            tools.LimitCase(bench, "limit+store+sync %d conn, plain" % n, "limit",
                            connections=n, store=True, sync=True),
            tools.LimitCase(bench, "limit+store+sync %d conn, TLS" % n, "limit", tls=True,
                            connections=n, store=True, sync=True),
            tools.LimitCase(bench, "limit+store+sync+sha256 %d conn, plain" % n, "limit",
                            connections=n, store=True, sync=True, sha256=True),
            tools.LimitCase(bench, "limit+store+sync+sha256 %d conn, TLS" % n, "limit",
                            tls=True, connections=n, store=True, sync=True, sha256=True),
            tools.LimitCase(bench, "limit+store+batches+sha256 %d conn, plain" % n, "limit",
                            connections=n, store=True, sha256=True, batch=godwit_batch(n)),
            tools.LimitCase(bench, "limit+store+batches+sha256 %d conn, TLS" % n, "limit",
                            tls=True, connections=n, store=True, sha256=True,
                            batch=godwit_batch(n))]


def serve(bench, args):
    """--serve: two scripts per case on the main mailbox, then wait: fresh.sh empties
    the destination (run it, and `sync`, before each timed run, as the bench does),
    run.sh runs the tool. In run.sh GODWIT and GODWIT_PLUGINS replace godwit's
    executable and plugin directory (an A/B of two builds); extra arguments go to the
    tool (e.g. --log-level debug)."""
    # The cases on the main mailbox that start from an empty destination (not the
    # re-run); N connections: godwit's default, as the bench would have measured it. The
    # imap sink and limit+append write into a user of the held Dovecot (their first
    # repetition's), whose mail fresh.sh removes.
    served = (tools.LimitCase, tools.GodwitCase, tools.GodwitImapSinkCase)
    cases = [c for c in make_cases(bench, args) + limit_n_cases(bench, args, [], unmeasured=2)
             if type(c) in served and c.user == "alice" and c.available() is None]
    lines = []
    for case in cases:
        command = case.prepare(1)
        fresh = "rm -rf out state.db state.db-wal state.db-shm reports\n"
        if getattr(case, "target", None):  # Dovecot makes the Maildir again at login
            fresh += "find %s -mindepth 1 -delete\n" % shlex.quote(bench.dv.home_of(case.target))
        argv = [shlex.quote(a) for a in command.argv]
        if case.tool == "godwit":
            plugins = command.argv.index("--plugin-path") + 1
            argv[0] = '"${GODWIT:-%s}"' % argv[0]
            argv[plugins] = '"${GODWIT_PLUGINS:-%s}"' % argv[plugins]
        env = {k: v for k, v in (command.env or {}).items() if os.environ.get(k) != v}
        os.makedirs(case.workdir, exist_ok=True)
        head = "#!/bin/sh\n# %s (bench/run --serve)\nset -e\ncd %s\n" % (
            case.label, shlex.quote(case.workdir))
        for name, body in (
                ("fresh.sh", fresh),
                ("run.sh", "".join("export %s=%s\n" % (k, shlex.quote(v))
                                   for k, v in env.items()) +
                 "exec %s \"$@\"\n" % " ".join(argv))):
            with open(os.path.join(case.workdir, name), "w", encoding="utf-8") as f:
                f.write(head + body)
            os.chmod(os.path.join(case.workdir, name), 0o700)
        lines.append("%-40s %s/{fresh,run}.sh" % (case.label, case.workdir))
    sys.stdout.write("Dovecot: %s\n%s\n" % (bench.dv.describe(), "\n".join(lines)))
    log("serving until interrupted (Ctrl-C or SIGTERM)")
    try:
        while True:
            signal.pause()
    except (KeyboardInterrupt, SystemExit):
        return 0


def run_cases(bench, cases, reps_of):
    """Run every case @reps_of(case) times, the repetitions interleaved: round r runs
    repetition r of each case in turn. This machine has streaks in which everything
    takes up to twice its CPU (PROFILE.md, eighth and ninth passes); interleaved, a
    streak slows one repetition of several rows, which their medians leave out, where
    consecutive repetitions let it slow every repetition of one row."""
    results = []
    for case in cases:
        reason = case.available()
        if reason:
            log("%s: %s" % (case.label, reason))
            results.append(report.Result(case, unavailable=reason))
            continue
        result = report.Result(case)
        results.append(result)
        try:
            case.setup()
        except Exception as exc:  # a broken case is reported in its row, the others still run
            _case_failed(result, exc)
            _retire(bench, case)
    rounds = max([reps_of(r.case) for r in results] + [0])
    for rep in range(1, rounds + 1):
        for result in results:
            reps = reps_of(result.case)
            if result.unavailable or result.error or rep > reps:
                continue
            try:
                _run_once(result, rep, reps)
            except Exception as exc:
                _case_failed(result, exc)
            if rep == reps or result.error:
                _retire(bench, result.case)
    return results


def _retire(bench, case):
    """A case's last destination is moved aside too, or the rows' gigabytes add up: the
    80,000-message row once found the file system full of earlier rows' runs."""
    if not bench.args.keep:
        tools.retire_dir(os.path.join(case.workdir, "out"))


def _case_failed(result, exc):
    result.error = ("%s: %s" % (type(exc).__name__, exc)).strip()
    log("%s: failed: %s" % (result.case.label, result.error))


def _run_once(result, rep, reps):
    case = result.case
    command = case.prepare(rep)
    case.before_run()
    sample = measure.run_timed(command.argv, env=command.env, cwd=command.cwd)
    case.after_run()
    verdict = case.verify(rep, sample)
    if not verdict.ok and sample.returncode != 0:
        verdict.details.insert(0, "exit %d; stderr: %s" % (sample.returncode,
                                                        sample.stderr[-1500:]))
    result.add(sample, verdict)
    log("%s: run %d/%d %.2f s, %d KiB, exit %d, %s" % (
        case.label, rep, reps, sample.wall, sample.rss_kib, sample.returncode, verdict.text))
    for line in verdict.details[:15]:
        log("    " + line)


def machine_line():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return "%s, %d cores, %s %s" % (model, os.cpu_count(), platform.system(), platform.release())


def tool_versions(args):
    out = {}
    for name, argv in (("dovecot", [dovecot.find_dovecot(), "--version"]),
                       ("mbsync", ["mbsync", "--version"]),
                       ("offlineimap", ["offlineimap", "--version"]),
                       ("imapsync", [args.imapsync or "imapsync", "--version"])):
        try:
            text = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            lines = (text.stdout or text.stderr).strip().splitlines()
            # imapsync first says where it runs: its version is the last line.
            out[name] = lines[-1] if name == "imapsync" else lines[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            out[name] = "not installed"
    return out


def machine_lock(path=None):
    """One bench at a time on a machine: two would time each other's load, and the
    second would take the first's held-off reclaim settings for the machine's own and
    put those back at its exit. (file, None) while held, else (None, the holder's pid)."""
    path = path or os.environ.get("GODWIT_BENCH_LOCK") or os.path.join(
        "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir(), "godwit-bench.lock")
    f = open(path, "a+", encoding="ascii")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        return None, holder
    f.truncate(0)
    f.write("%d\n" % os.getpid())
    f.flush()
    return f, None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    lock, holder = machine_lock()
    if lock is None:
        log("another bench/run is running on this machine (pid %s): the two would time each "
            "other; wait for it or stop it" % holder)
        return 2
    ensure_packages(args.no_install)
    if not os.access(measure.GNU_TIME, os.X_OK):
        log("GNU time (%s) is required: apt-get install time" % measure.GNU_TIME)
        return 2
    # A kill must still restore what the bench changed and unmount its file system.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.no_hold_reclaim:
        return run(args, hostmem.left_alone())
    hold = hostmem.ReclaimHold().hold()
    log("host memory reclaim: " + hold.describe())  # also what to undo after a kill -9
    try:
        return run(args, hold.describe())
    finally:
        hold.restore()


def run(args, reclaim):
    started = datetime.datetime.now(datetime.timezone.utc)
    scratch_fs, destinations = None, "--workdir"
    workdir = args.workdir
    if not workdir and not args.no_scratch_fs:
        # Room for every run's destination (they are deleted when space runs low).
        scratch_fs = scratch.ScratchFs(max(40 * args.messages * 60_000, 16 * 1024 ** 3))
        try:
            workdir = scratch_fs.mount()
            destinations = scratch_fs.describe()
            tools.PURGE_WAIT_S = 0  # the wait is for ext4 without a journal
        except (OSError, RuntimeError) as exc:
            log("no scratch file system (%s); writing into a temporary directory" % exc)
            scratch_fs.remove()
            scratch_fs = None
    if not workdir:
        workdir, destinations = tempfile.mkdtemp(prefix="godwit-bench-"), "temporary directory"
    os.makedirs(workdir, exist_ok=True)
    if args.keep:
        os.environ["GODWIT_KEEP_TEST_DIRS"] = "always"
    # The imap sink's destinations (one fresh user per repetition) exist from the start:
    # a passwd-file user added while Dovecot runs may not be seen within the same second.
    users = {"alice": "Bench-alice-1", "small": "Bench-small-2"}
    users.update({"sink%d" % rep: "Bench-sink-%d" % rep for rep in range(1, args.reps + 1)})
    users.update({"imapsync%d" % rep: "Bench-imapsync-%d" % rep
                  for rep in range(1, max(args.reps, args.slow_reps) + 1)})
    users.update({"rss%d" % n: "Bench-rss-%d" % n for n in args.rss_sizes})
    users.update({"append%d_%d" % (conns, rep): "Bench-append-%d-%d" % (conns, rep)
                  for conns in (1, 2) for rep in range(1, args.reps + 1)})
    # Dovecot's mail lives on the destinations' file system too: the imap sink and
    # imapsync rows write into it, and this VM's root (ext4 without a journal) makes
    # file creation slow for minutes after files were deleted (PROFILE.md).
    dv = dovecot.Dovecot(users=users, root_parent=workdir if scratch_fs else None)
    bench = None
    try:
        dv.start()
        bench = Bench(args, dv, workdir)
        log(dv.describe())
        if args.rtt:
            bench.add_round_trip(args.rtt)
        bench.limit_bin = build_limit(args.build_dir)
        if not args.only or "godwit" in args.only:
            bench.godwit_bin, bench.plugin_dir, bench.godwit_missing = find_godwit(args)
        bench.seed("alice", args.messages, args.seed)
        if args.serve:
            return serve(bench, args)
        bench.seed("small", args.small_messages, args.seed + 1)
        def reps_of(case):
            return args.slow_reps if case.tool in ("offlineimap", "imapsync") else args.reps
        results = run_cases(bench, make_cases(bench, args), reps_of)
        if not args.only or "limit" in args.only:
            results += run_cases(bench, limit_n_cases(bench, args, results), reps_of)
        for n in args.rss_sizes:
            # The same generator and seed as the main mailbox: only the size differs.
            bench.seed("rss%d" % n, n, args.seed)
        results += run_cases(bench, [
            tools.GodwitCase(bench, "godwit %d msgs, RSS" % n, "godwit", user="rss%d" % n,
                             connections=None, ratios=False) for n in args.rss_sizes], reps_of)
        header = {
            "date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_line(),
            "versions": tool_versions(args),
            "corpus": bench.corpora["alice"].summary(),
            "shared corpus": bench.corpora["alice"].corpus_status,
            "small mailbox": bench.corpora["small"].summary(),
            "repetitions": "%d (OfflineIMAP, imapsync %d); medians" % (args.reps, args.slow_reps),
            "godwit": bench.godwit_bin or bench.godwit_missing,
            "destinations": destinations,
            "host memory reclaim": reclaim,
        }
        if args.rtt:
            header["round trip"] = ("%g ms added by a proxy in front of Dovecot "
                                    "(gwbench/delayproxy.py)" % args.rtt)
        text = report.render(header, results)
        sys.stdout.write(text)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(report.as_json(header, results), f, indent=2)
        # Exit status: godwit's correctness and the bench's own health. A reference tool
        # that alters or loses mail is a result shown in its row, not a failure of the run.
        failed = [r for r in results if r.error or (r.case.tool in ("godwit", "limit") and r.wrong)]
        return 1 if failed else 0
    finally:
        if bench is not None:
            bench.stop_proxies()
        dv.stop()
        tools.purge_moved_aside()
        if args.keep:
            log("kept %s" % workdir)
        elif scratch_fs:
            scratch_fs.remove()
        elif not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
