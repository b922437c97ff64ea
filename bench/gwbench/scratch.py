"""Where the destinations are written: a loop-mounted, journaled ext4 of its own.

Why: on an ext4 without a journal (this VM's root file system, see
PROFILE.md) every file created within minutes of thousands being deleted
scans past all of them (find_inode_bit -> recently_deleted, a check ext4 makes
only without a journal), so a Maildir run's time depended on what the bench
or anyone else had deleted shortly before, whatever the tool: the same godwit
run took 0.8 s or 3 s. A fresh journaled ext4 is what an administrator's
destination disk looks like, and it is the same for every tool. Mounted with
discard, so deleted destinations give their space back to the host.

The loop device does direct I/O (losetup --direct-io=on) where the host file
system allows it: a buffered loop device keeps every block twice in the page
cache and writes it back twice, which the rows with fsync paid for (a durable
copy of 20,000 messages: 4.56 s against 1.89 s; PROFILE.md, seventh pass).

Needs root and a loop device; without them (or with --no-scratch-fs or
--workdir) the bench writes into a temporary directory and says so.
"""

import os
import shutil
import subprocess
import tempfile

_RESERVE_BYTES = 10 * 1024 ** 3  # left free on the host file system under the image


class ScratchFs:
    def __init__(self, size_bytes, parent=None):
        parent = parent or tempfile.gettempdir()
        free = shutil.disk_usage(parent).free
        self.size = min(size_bytes, free - _RESERVE_BYTES)
        self.base = tempfile.mkdtemp(prefix="godwit-bench-fs-", dir=parent)
        self.image = os.path.join(self.base, "ext4.img")
        self.mountpoint = os.path.join(self.base, "mnt")
        self.mounted = False
        self.device = None
        self.direct_io = False

    def _attach(self):
        """A loop device for the image, with direct I/O if the host allows it."""
        for direct in (True, False):  # buffered if the host refuses direct I/O
            argv = ["losetup", "--find", "--show"] + (["--direct-io=on"] if direct else [])
            result = subprocess.run(argv + [self.image], capture_output=True, text=True)
            if result.returncode == 0:
                self.device = result.stdout.strip()
                # losetup may attach and then fail to switch direct I/O on: ask.
                info = subprocess.run(["losetup", "--noheadings", "--output", "DIO",
                                       self.device], capture_output=True, text=True)
                self.direct_io = info.stdout.strip() == "1"
                return
        raise RuntimeError("losetup failed: %s" % result.stderr.strip()[-300:])

    def mount(self):
        """The mount point, or raise RuntimeError saying why not."""
        if self.size < 2 * 1024 ** 3:
            raise RuntimeError("less than 2 GiB free for the image in %s" % self.base)
        os.makedirs(self.mountpoint)
        with open(self.image, "wb") as f:
            f.truncate(self.size)  # sparse: blocks are used as files are written
        # Inode tables and journal written now: lazy initialisation would zero them
        # in the background during the first runs (measured: it doubled their CPU time).
        result = subprocess.run(["mkfs.ext4", "-q", "-F", "-E",
                                 "nodiscard,lazy_itable_init=0,lazy_journal_init=0", self.image],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError("mkfs.ext4 failed: %s" % result.stderr.strip()[-300:])
        self._attach()
        result = subprocess.run(["mount", "-o", "discard", self.device, self.mountpoint],
                                capture_output=True, text=True)
        if result.returncode != 0:
            subprocess.run(["losetup", "--detach", self.device], capture_output=True)
            raise RuntimeError("mount failed: %s" % result.stderr.strip()[-300:])
        self.mounted = True
        # The bench's Dovecot keeps its mail in here: its processes (uid mail) must
        # be able to pass through, not to list.
        for path in (self.base, self.mountpoint):
            os.chmod(path, 0o711)
        return self.mountpoint

    def describe(self):
        return "journaled ext4 (loop%s, %.0f GiB sparse image in %s)" % (
            ", direct I/O" if self.direct_io else "", self.size / 1024 ** 3, self.base)

    def remove(self):
        if self.mounted:
            subprocess.run(["umount", self.mountpoint], capture_output=True)
            self.mounted = False
        if self.device:
            subprocess.run(["losetup", "--detach", self.device], capture_output=True)
            self.device = None
        shutil.rmtree(self.base, ignore_errors=True)
