"""The godwit benchmark suite (bench/run): corpus, tool runners, verification, table."""

import os
import sys

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH_DIR)

# The test harness (tests/harness) is the one place that knows how to start a
# private Dovecot and how to read and compare mailboxes; the bench builds on it.
if os.path.join(REPO, "tests") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "tests"))
