"""The harness with the real-world corpus (../shared/corpus, or $GODWIT_CORPUS).

Kept apart from test_harness.py so that, where the corpus is absent, only this
file is reported as skipped (exit 77), never the harness tests that did run.
"""

import hashlib
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness import seed  # noqa: E402
from harness.testcase import DovecotTestCase, main  # noqa: E402


def planned_counts(result):
    counts = Counter(result.folders[p.folder] for p in result.planned)
    return {name: counts.get(name, 0) for name in result.folders.values()}


class CorpusSeeding(DovecotTestCase):
    """The real-world corpus: may skip (with the reason) when ../shared/corpus is absent."""

    def test_corpus_seeds_exactly(self):
        path = seed.corpus_dir()
        if not os.path.isdir(path):
            self.skipTest("corpus: skipped, %s not found" % path)
        index = {}
        with open(os.path.join(path, "INDEX.tsv"), encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
            for line in f:
                row = dict(zip(header, line.rstrip("\n").split("\t")))
                index[row["file"]] = row
        corpus = seed.load_corpus(path)
        self.assertEqual(len(index), len(corpus))
        for name, data in corpus:
            self.assertEqual(index[name]["sha256"], hashlib.sha256(data).hexdigest(), name)
        began = time.monotonic()
        result = seed.seed_user(self.dovecot, "alice", edge=False, generated=0, corpus=corpus, out=None)
        seconds = time.monotonic() - began
        self.assertEqual([], result.problems)
        self.assertEqual(len(corpus), result.manifest.count())
        self.assertEqual(planned_counts(result), {n: len(result.manifest[n]) for n in result.folders.values()})
        self.assertLess(seconds, 20.0)
        sys.stderr.write("corpus: %d messages seeded and fetched back in %.2f s\n" % (len(corpus), seconds))


if __name__ == "__main__":
    main()
