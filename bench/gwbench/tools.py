"""The benchmark cases: how each tool is configured, started from a fresh destination,
and checked afterwards.

A case is one row of the table. bench/run calls, per case: available() (a
reason when it cannot run, shown instead of numbers), setup() once, then for
each repetition prepare(rep) -> Command, the timed run, and verify(rep, sample).
"""

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field

from . import check

__all__ = ["Command", "Case", "LimitCase", "MbsyncCase", "OfflineImapCase", "ImapsyncCase",
           "GodwitCase", "GodwitRerunCase", "GodwitImapSinkCase", "logins_of"]


@dataclass
class Command:
    argv: list
    env: dict = None
    cwd: str = None


# Destinations of earlier runs are moved aside, not deleted, before the next run:
# on ext4 without a journal (this VM's root) every file created while thousands
# of inodes were freed in the last 60-360 s scans past all of them
# (find_inode_bit -> recently_deleted), which made each run pay ~3 s of system
# time for the previous run's deletion, whatever the tool (bench/PROFILE.md).
# They are deleted when free space runs low (then the bench waits out the
# kernel's window) and at the end (purge_moved_aside). The bench's own scratch
# file system (scratch.py) has a journal, so there it sets the wait to 0.
_MOVED_ASIDE = []
_KEEP_FREE_BYTES = 8 * 1024 ** 3
PURGE_WAIT_S = 61


def purge_moved_aside(wait=False):
    """Delete the destinations moved aside; with @wait, sync and outwait ext4's window."""
    while _MOVED_ASIDE:
        shutil.rmtree(_MOVED_ASIDE.pop(), ignore_errors=True)
    if wait and PURGE_WAIT_S:
        os.sync()
        time.sleep(PURGE_WAIT_S)


def retire_dir(path):
    """Move @path aside, to be deleted when space runs low or at the end."""
    if os.path.exists(path):
        aside = "%s.old%d" % (path.rstrip("/"), len(_MOVED_ASIDE) + 1)
        while os.path.exists(aside):
            aside += "x"
        os.rename(path, aside)
        _MOVED_ASIDE.append(aside)


def _fresh_dir(path):
    retire_dir(path)
    # Also before a case's first run: the RSS rows' large corpora come late, and an
    # 80,000-message run found the disk full of earlier rows' destinations.
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if _MOVED_ASIDE and shutil.disk_usage(parent).free < _KEEP_FREE_BYTES:
        purge_moved_aside(wait=True)
    os.makedirs(path)
    return path


def logins_of(dv, user):
    """How many IMAP logins as @user Dovecot has logged so far (connections opened)."""
    pattern = re.compile(r"imap-login: Info: Login: user=<%s>" % re.escape(user))
    return len(pattern.findall(dv.log_text()))


@dataclass
class Case:
    """One table row. @bench is the running gwbench.main.Bench (Dovecot, corpora, paths)."""

    bench: object
    label: str
    tool: str
    user: str = "alice"
    tls: bool = False
    connections: int = 1  # None: the tool's default (measured from Dovecot's log)
    ratios: bool = True  # comparable with the other rows (same work)
    measured_connections: list = field(default_factory=list)

    @property
    def dv(self):
        return self.bench.dv

    @property
    def source(self):
        return self.bench.sources[self.user]

    @property
    def workdir(self):
        safe = re.sub(r"[^A-Za-z0-9]+", "-", self.label).strip("-")
        return os.path.join(self.bench.workdir, safe)

    @property
    def port(self):
        return self.bench.port_of(self.tls)

    @property
    def password(self):
        return self.dv.users[self.user]

    def available(self):
        return None

    def setup(self):
        pass

    def prepare(self, rep):
        raise NotImplementedError

    def verify(self, rep, sample):
        raise NotImplementedError

    def before_run(self):
        # Untimed: what earlier runs left dirty in the page cache is written out now,
        # not by this run's fsync/syncfs (which syncs the whole file system) or by the
        # kernel's writeback while it runs. Without it, a godwit run with fsync after a
        # run without took up to 7.3 s instead of 3.9 s.
        os.sync()
        self._logins = logins_of(self.dv, self.user)

    def after_run(self):
        self.measured_connections.append(logins_of(self.dv, self.user) - self._logins)


class LimitCase(Case):
    """limit: drain the mailbox and discard it; with @store, also write each message as
    a file the cheapest way (tmp/ then cur/, no fsync) into the same file system the
    Maildir tools write to: the floor of storing the mail here. With @sync too, make it
    durable the cheapest way (syncfs in the background every 32 MiB, one at the end):
    the floor of a copy that survives a power cut. With @sha256 too, also take each
    message's SHA-256 as it is written (godwit keeps it in its state, DESIGN.md): the
    floor of a durable copy that can tell later what it copied. With @batch (messages)
    instead of @sync, keep each message in tmp/ until its batch is on the disk, as
    godwit's maildir sink does (per batch, beside the reading of the next: syncfs, the
    renames into cur/, an fsync of cur/ and tmp/): a crash never leaves a partial
    message in cur/, the floor of a copy durable batch by batch. With @append, APPEND
    each message into a fresh user of the same Dovecot the fastest way (one MULTIAPPEND
    per folder, every literal non-synchronising, no flags or dates): the floor of
    IMAP -> IMAP."""

    def __init__(self, *args, store=False, sync=False, sha256=False, append=False, batch=0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.store = store
        self.sync = sync or batch > 0
        self.batch = batch
        self.sha256 = sha256
        self.append = append

    def available(self):
        return None if self.bench.limit_bin else "not available: limit reader not built"

    def prepare(self, rep):
        argv = [self.bench.limit_bin, "--host", self.dv.host, "--port", str(self.port),
                "--user", self.user, "--connections", str(self.connections)]
        if self.tls:
            argv += ["--tls", "--ca", self.dv.ca_file]
        env = dict(os.environ, LIMIT_PASSWORD=self.password)
        if self.store:
            argv += ["--store", _fresh_dir(os.path.join(self.workdir, "out"))]
            if self.batch:
                argv += ["--sync-batch", str(self.batch)]
            elif self.sync:
                argv += ["--sync"]
            argv += ["--sha256"] if self.sha256 else []
        if self.append:
            # created empty when Dovecot started (gwbench/main.py)
            self.target = "append%d_%d" % (self.connections, rep)
            argv += ["--append", self.target]
            env["LIMIT_APPEND_PASSWORD"] = self.dv.users[self.target]
        return Command(argv, env=env)

    def verify(self, rep, sample):
        verdict = check.verify_reader(self.source, sample.stdout)
        if verdict.ok and self.store:
            return check.verify_stored(self.source, os.path.join(self.workdir, "out", "cur"))
        if verdict.ok and self.append:
            client = self.dv.imap(self.target)
            try:
                return check.verify_appended(self.bench.appended_sources[self.user], client)
            finally:
                client.logout()
        return verdict


class MbsyncCase(Case):
    """mbsync (isync 1.4) IMAP -> Maildir++, pull only, its fast settings.

    PipelineDepth is left at its default, unlimited (man mbsync); FSync no is the
    documented fast mode, FSync yes its default. CopyArrivalDate yes keeps the
    INTERNALDATE, which a migration needs.
    """

    fsync: bool = False

    def __init__(self, *args, fsync=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fsync = fsync

    def available(self):
        return None if shutil.which("mbsync") else "not available: mbsync (isync) not installed"

    def prepare(self, rep):
        out = _fresh_dir(os.path.join(self.workdir, "out"))
        config = os.path.join(self.workdir, "mbsyncrc")
        lines = [
            "FSync %s" % ("yes" if self.fsync else "no"),
            "",
            "IMAPAccount src",
            # mbsync checks the certificate's DNS names only, not IP addresses.
            "Host %s" % ("localhost" if self.tls else self.dv.host),
            "Port %d" % self.port,
            "User %s" % self.user,
            "Pass %s" % self.password,
            "AuthMechs LOGIN",
        ]
        if self.tls:
            lines += ["SSLType IMAPS", "CertificateFile %s" % self.dv.ca_file]
        else:
            lines += ["SSLType None"]
        lines += [
            "",
            "IMAPStore src", "Account src", "",
            # Maildir++: INBOX is the root, no Path (mbsync refuses both).
            "MaildirStore dst", "Inbox %s" % out, "SubFolders Maildir++", "",
            "Channel bench", "Far :src:", "Near :dst:", "Patterns *", "Create Near",
            "Sync Pull", "Expunge None", "CopyArrivalDate yes", "SyncState *",
        ]
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(config, 0o600)
        return Command(["mbsync", "-c", config, "-q", "-a"])

    def verify(self, rep, sample):
        return check.verify_tool_maildir(self.source, os.path.join(self.workdir, "out"))


class OfflineImapCase(Case):
    """OfflineIMAP (offlineimap3) IMAP -> Maildir, read-only remote, its default settings
    except fsync = false (its fast mode)."""

    def available(self):
        return None if shutil.which("offlineimap") else "not available: offlineimap3 not installed"

    def prepare(self, rep):
        out = _fresh_dir(os.path.join(self.workdir, "out"))
        meta = _fresh_dir(os.path.join(self.workdir, "meta"))
        config = os.path.join(self.workdir, "offlineimaprc")
        remote = [
            "[Repository remote]", "type = IMAP", "remotehost = %s" % self.dv.host,
            "remoteport = %d" % self.port, "remoteuser = %s" % self.user,
            "remotepass = %s" % self.password, "readonly = True", "starttls = no",
        ]
        remote += (["ssl = yes", "sslcacertfile = %s" % self.dv.ca_file] if self.tls
                   else ["ssl = no"])
        lines = [
            "[general]", "accounts = bench", "metadata = %s" % meta, "fsync = false", "",
            "[Account bench]", "localrepository = local", "remoterepository = remote", "",
            "[Repository local]", "type = Maildir", "localfolders = %s" % out, "",
        ] + remote
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(config, 0o600)
        return Command(["offlineimap", "-c", config, "-o", "-u", "quiet"])

    def verify(self, rep, sample):
        return check.verify_tool_maildir(self.source, os.path.join(self.workdir, "out"))


class ImapsyncCase(Case):
    """imapsync IMAP -> IMAP (Dovecot alice -> a fresh user per repetition), its defaults
    (messages recognised by headers, INTERNALDATE and flags synced) plus the two options
    its own output suggests to save time (--nofoldersizes, --nofoldersizesatend). Not
    packaged in Debian 12: the row runs when --imapsync or $IMAPSYNC names the script."""

    def available(self):
        path = self.bench.args.imapsync
        if not path:
            return "not available: imapsync is not packaged in Debian 12 (--imapsync PATH)"
        if not os.access(path, os.X_OK):
            return "not available: %s is not executable" % path
        return None

    def prepare(self, rep):
        self.target = "imapsync%d" % rep  # created empty when Dovecot started (gwbench/main.py)
        tmp = _fresh_dir(os.path.join(self.workdir, "tmp"))
        argv = [self.bench.args.imapsync, "--nolog", "--noreleasecheck", "--tmpdir", tmp,
                "--pidfile", os.path.join(tmp, "imapsync.pid"),
                "--nofoldersizes", "--nofoldersizesatend"]
        for side, user in (("1", self.user), ("2", self.target)):
            passfile = os.path.join(tmp, "pass" + side)
            with open(passfile, "w") as f:
                f.write(self.dv.users[user] + "\n")
            os.chmod(passfile, 0o600)
            argv += ["--host" + side, self.dv.host, "--port" + side, str(self.port),
                     "--user" + side, user, "--passfile" + side, passfile]
        return Command(argv, cwd=tmp)

    def verify(self, rep, sample):
        client = self.dv.imap(self.target)
        try:
            return check.verify_server(self.bench.appended_sources[self.user], client)
        finally:
            client.logout()


def _yaml(value):
    return json.dumps(value, ensure_ascii=False)  # a JSON scalar is a YAML scalar


def _godwit_failed(sample):
    stderr = sample.stderr.splitlines()
    lines = [l for l in stderr if " error" in l or " failed" in l or "partial" in l] or \
        [l for l in stderr if " warn" in l] or stderr[-1:] or ["(no output)"]
    return check.Verdict(False, "WRONG: godwit exited %d: %s" % (sample.returncode, lines[0][:160]),
                         [sample.stdout[-2000:], sample.stderr[-4000:]])


class GodwitCase(Case):
    """godwit run: IMAP source -> maildir sink (or another sink, see subclasses)."""

    def __init__(self, *args, fsync=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fsync = fsync

    email = property(lambda self: "%s@bench.test" % self.user)

    def available(self):
        return self.bench.godwit_missing

    def source_options(self):
        opts = {"plugin": "imap", "host": self.dv.host, "port": self.port,
                "tls": "implicit" if self.tls else "none"}
        if self.tls:
            opts["ca_file"] = self.dv.ca_file
        return opts

    def sink_options(self):
        return {"plugin": "maildir", "path": os.path.join(self.workdir, "out", "{email}"),
                "fsync": self.fsync}

    def write_profile(self):
        lines = ["version: 1", "state: %s" % _yaml(os.path.join(self.workdir, "state.db")),
                 "report: %s" % _yaml(os.path.join(self.workdir, "reports")), "pipelines:",
                 "  - name: bench"]
        for section, options in (("source", self.source_options()),
                                 ("sink", self.sink_options())):
            lines.append("    %s:" % section)
            lines += ["      %s: %s" % (k, _yaml(v)) for k, v in options.items()]
        lines += ["    mailboxes:", "      list:", "        - email: %s" % _yaml(self.email),
                  "          username: %s" % _yaml(self.user),
                  "          password: %s" % _yaml(self.password)]
        if self.connections is not None:
            lines += ["    limits:", "      mailboxes_in_parallel: 1",
                      "      source_connections: %d" % self.connections,
                      "      connections_per_mailbox: %d" % self.connections]
        profile = os.path.join(self.workdir, "profile.yaml")
        with open(profile, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(profile, 0o600)
        return profile

    def command(self):
        return Command([self.bench.godwit_bin, "run", os.path.join(self.workdir, "profile.yaml"),
                        "--plugin-path", self.bench.plugin_dir, "--no-progress"],
                       cwd=self.workdir)

    def fresh(self):
        _fresh_dir(self.workdir)
        self.write_profile()

    def prepare(self, rep):
        self.fresh()
        return self.command()

    def verify(self, rep, sample):
        if sample.returncode != 0:
            return _godwit_failed(sample)
        return check.verify_godwit_maildir(self.source,
                                           os.path.join(self.workdir, "out", self.email))


class GodwitRerunCase(GodwitCase):
    """The incremental re-run with nothing new: one untimed full run, then timed re-runs."""

    def setup(self):
        self.fresh()
        sample = self.bench.run_untimed(self.command())
        if sample.returncode != 0:
            raise RuntimeError("initial godwit run failed: " + _godwit_failed(sample).text)

    def prepare(self, rep):
        return self.command()

    def verify(self, rep, sample):
        verdict = super().verify(rep, sample)
        match = re.search(r"messages:\s+(\d+) migrated", sample.stdout)
        if verdict.ok and (not match or int(match.group(1)) != 0):
            return check.Verdict(False, "WRONG: the re-run copied %s messages"
                                 % (match.group(1) if match else "an unknown number of"))
        return verdict


class GodwitImapSinkCase(GodwitCase):
    """Dovecot -> Dovecot (another user) through the imap sink; a fresh user per repetition."""

    def available(self):
        missing = self.bench.godwit_missing
        if missing:
            return missing
        if not os.path.exists(os.path.join(self.bench.plugin_dir, "gw-sink-imap.so")):
            return "not available: no imap sink plugin (gw-sink-imap.so not built)"
        return None

    def prepare(self, rep):
        self.target = "sink%d" % rep  # created empty when Dovecot started (gwbench/main.py)
        return super().prepare(rep)

    def sink_options(self):
        opts = {"plugin": "imap", "host": self.dv.host, "port": self.port,
                "tls": "implicit" if self.tls else "none", "user": self.target,
                "password": self.dv.users[self.target]}
        if self.tls:
            opts["ca_file"] = self.dv.ca_file
        return opts

    def verify(self, rep, sample):
        if sample.returncode != 0:
            return _godwit_failed(sample)
        client = self.dv.imap(self.target)
        try:
            return check.verify_server(self.bench.appended_sources[self.user], client)
        finally:
            client.logout()
