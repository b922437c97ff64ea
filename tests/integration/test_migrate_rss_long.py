"""Long end-to-end test: a mailbox of 20,000 messages migrates with a peak RSS
under 64 MiB, exactly. Prints throughput and peak RSS for the notes."""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from migrate_helpers import (MigrationCase, dovecot, godwit_bin, mailbox_of,  # noqa: E402
                             plugin_dir, seed)

ALICE = "alice@example.org"
MESSAGES = 20_000
RSS_LIMIT_KIB = 64 * 1024


class LargeMailbox(MigrationCase):
    @classmethod
    def setUpClass(cls):
        cls.dv = dovecot.Dovecot()
        cls.dv.start()
        seeded = seed.seed_user(cls.dv, "alice", generated=MESSAGES, edge=False, corpus=False)
        if seeded.problems:
            raise AssertionError("seeding: %s" % seeded.problems[:5])
        cls.total = seeded.manifest.count()

    @classmethod
    def tearDownClass(cls):
        cls.dv.stop()

    def test_20000_messages_under_64_mib(self):
        self.assertEqual(MESSAGES, self.total)
        self.work.write_profile(self.dv, [(ALICE, "alice", self.dv.users["alice"])])
        began = time.monotonic()
        out_path = os.path.join(self.work.path, "stdout")
        err_path = os.path.join(self.work.path, "stderr")
        with open(out_path, "w") as out_f, open(err_path, "w") as err_f:
            proc = subprocess.Popen([godwit_bin(), "run", self.work.profile, "--plugin-path",
                                     plugin_dir(), "--no-progress"], stdout=out_f, stderr=err_f)
            # wait4 gives this child's own peak RSS (ru_maxrss, KiB on Linux).
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        with open(out_path) as f:
            out = f.read()
        with open(err_path) as f:
            err = f.read()
        peak_kib = usage.ru_maxrss
        seconds = time.monotonic() - began
        self.assertEqual(0, proc.returncode, err[-4000:])
        box = mailbox_of(self.work.report_of(out), ALICE)
        self.assertEqual((MESSAGES, "completed"), (box["migrated"], box["status"]))
        print("\n%d messages, %.1f MB in %.1f s: %.0f msgs/s, %.2f MB/s, peak RSS %.1f MiB"
              % (MESSAGES, box["bytes"] / 1e6, seconds, MESSAGES / seconds,
                 box["bytes"] / 1e6 / seconds, peak_kib / 1024), file=sys.stderr)
        self.assertLess(peak_kib, RSS_LIMIT_KIB)
        self.assertSinkEqualsSource(self.dv, "alice", ALICE)


if __name__ == "__main__":
    unittest.main()
