"""Where the destinations are written: a loop-mounted, journaled ext4 of its own.

Why: on an ext4 without a journal (this VM's root file system, see
PROFILE.md) every file created within minutes of thousands being deleted
scans past all of them (find_inode_bit -> recently_deleted, a check ext4 makes
only without a journal), so a Maildir run's time depended on what the bench
or anyone else had deleted shortly before, whatever the tool: the same godwit
run took 0.8 s or 3 s. A fresh journaled ext4 is what an administrator's
destination disk looks like, and it is the same for every tool. Mounted with
discard, so deleted destinations give their space back to the host.

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

    def mount(self):
        """The mount point, or raise RuntimeError saying why not."""
        if self.size < 2 * 1024 ** 3:
            raise RuntimeError("less than 2 GiB free for the image in %s" % self.base)
        os.makedirs(self.mountpoint)
        with open(self.image, "wb") as f:
            f.truncate(self.size)  # sparse: blocks are used as files are written
        # Inode tables and journal written now: lazy initialisation would zero them
        # in the background during the first runs (measured: it doubled their CPU time).
        for argv in (["mkfs.ext4", "-q", "-F", "-E",
                      "nodiscard,lazy_itable_init=0,lazy_journal_init=0", self.image],
                     ["mount", "-o", "loop,discard", self.image, self.mountpoint]):
            result = subprocess.run(argv, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError("%s failed: %s" % (argv[0], result.stderr.strip()[-300:]))
        self.mounted = True
        # The bench's Dovecot keeps its mail in here: its processes (uid mail) must
        # be able to pass through, not to list.
        for path in (self.base, self.mountpoint):
            os.chmod(path, 0o711)
        return self.mountpoint

    def describe(self):
        return "journaled ext4 (loop, %.0f GiB sparse image in %s)" % (
            self.size / 1024 ** 3, self.base)

    def remove(self):
        if self.mounted:
            subprocess.run(["umount", self.mountpoint], capture_output=True)
            self.mounted = False
        shutil.rmtree(self.base, ignore_errors=True)
