"""unittest glue for the integration tests.

    class MyTest(DovecotTestCase):
        dovecot_options = {"separator": "."}     # passed to Dovecot()
        def test_x(self):
            client = self.dovecot.imap("alice")

    if __name__ == "__main__":
        main()

main() exits 0 only if every test passed, 1 on any failure or error, and
SKIPPED_EXIT (77, ctest's SKIP_RETURN_CODE) when nothing failed but something
was skipped, so ctest reports the file as skipped instead of passed.
"""

import os
import sys
import unittest

from .dovecot import Dovecot, HarnessError

__all__ = ["DovecotTestCase", "main", "SKIPPED_EXIT", "godwit_env"]

SKIPPED_EXIT = 77


class DovecotTestCase(unittest.TestCase):
    """One private Dovecot per test class (self.dovecot / cls.dovecot).

    A missing dovecot makes setUpClass raise: every test of the class errors,
    the run fails. With GODWIT_KEEP_TEST_DIRS=1 the instance's directory is
    kept when a test of the class failed.
    """

    dovecot_options = {}
    dovecot = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._class_failed = False
        cls.dovecot = Dovecot(**cls.dovecot_options)
        cls.dovecot.start()

    @classmethod
    def tearDownClass(cls):
        if cls.dovecot is not None:
            cls.dovecot.stop(failed=cls._class_failed)
            cls.dovecot = None
        super().tearDownClass()

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result is not None else (0, 0)
        outcome = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            type(self)._class_failed = True
        return outcome


def godwit_env(require_binary=True):
    """The paths ctest passes (tests/integration/CMakeLists.txt), with build/ defaults.

    Returns a dict with bin, plugin_dir, source_dir, build_dir. A missing
    godwit binary raises HarnessError (a failure, not a skip).
    """
    source = os.environ.get("GODWIT_SOURCE_DIR") or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    build = os.environ.get("GODWIT_BUILD_DIR") or os.path.join(source, "build")
    env = {
        "bin": os.environ.get("GODWIT_BIN") or os.path.join(build, "bin", "godwit"),
        "plugin_dir": os.environ.get("GODWIT_PLUGIN_DIR") or os.path.join(build, "plugins"),
        "source_dir": source,
        "build_dir": build,
    }
    if require_binary and not os.access(env["bin"], os.X_OK):
        raise HarnessError("godwit executable not found at %s (build it, or set GODWIT_BIN)" % env["bin"])
    return env


def main(argv=None):
    """Run the calling module's tests; exit 0 / 1 / 77 (see the module doc)."""
    program = unittest.main(module="__main__", argv=argv, exit=False, verbosity=2)
    result = program.result
    broken = result.failures + result.errors
    # A failed setUpClass is reported once, as a placeholder rather than a test.
    setups = sum(1 for test, _ in broken if isinstance(test, unittest.suite._ErrorHolder))
    failed = len(broken) - setups + len(getattr(result, "unexpectedSuccesses", []))
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped - len(result.expectedFailures)
    sys.stderr.write("integration: %d passed, %d skipped, %d failed%s%s\n" % (
        passed, skipped, failed,
        ", %d test classes could not start" % setups if setups else "",
        " (skipped is not passed)" if skipped else ""))
    failed += setups
    if failed or result.testsRun == 0:
        sys.exit(1)
    sys.exit(SKIPPED_EXIT if skipped else 0)
