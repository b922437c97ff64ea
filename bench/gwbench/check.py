"""Did a run copy every message? Verdicts built on tests/harness/verify.py.

godwit is held to the harness's full comparison (folder tree, bytes, flags,
internal dates: verify.compare); anything but no difference is WRONG.

The reference tools name folders their own way, so their output is compared
as one multiset over the whole mailbox: every message file found anywhere in a
cur/ or new/ below the destination, by SHA-256, against the source's. A file
that matches a source message only after removing one `X-TUID:` header line
(mbsync adds it to find the messages it stored) is counted as altered, not
missing; flags and dates of matched messages are compared and reported, but
only missing, extra or otherwise changed messages make the run WRONG.
"""

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field

from harness import verify

__all__ = ["Verdict", "verify_godwit_maildir", "verify_tool_maildir", "verify_reader",
           "verify_server", "flatten"]

_TUID_RE = re.compile(rb"^X-TUID: [^\r\n]*\r?\n", re.M)


@dataclass
class Verdict:
    ok: bool  # every message there, nothing extra, bytes equal or only X-TUID-altered
    text: str  # one line for the table
    details: list = field(default_factory=list)  # differences, for the log


def _counts_text(kinds):
    return ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items()))


def _from_differences(diffs, stray, exact_text="exact"):
    kinds = Counter(d.kind for d in diffs)
    if stray:
        kinds["stray file"] = len(stray)
    if not kinds:
        return Verdict(True, exact_text)
    details = [str(d) for d in diffs[:40]] + list(stray[:10])
    return Verdict(False, "WRONG: " + _counts_text(kinds), details)


def verify_godwit_maildir(source, root, decoder):
    """The godwit maildir sink's tree against the source manifest, as the tests do."""
    if not os.path.isdir(root):
        return Verdict(False, "WRONG: no output at %s" % root)
    sink = verify.read_maildir(root, decoder=decoder, delimiter="/")
    diffs = verify.compare(source, sink)
    return _from_differences(diffs, sink.stray)


def verify_server(source, client):
    """A destination IMAP mailbox (e.g. the imap sink's) against the source manifest."""
    actual = verify.read_server(client)
    diffs = verify.compare(source, actual)
    return _from_differences(diffs, actual.stray)


def flatten(manifest):
    """All messages of @manifest in one folder "*" (the tools' folder names differ)."""
    flat = verify.Manifest("/")
    flat["*"] = [m for msgs in manifest.values() for m in msgs]
    return flat


def _untuid(path, source_hashes):
    """The SHA-256 of the file without an X-TUID header line, if that is a source message."""
    with open(path, "rb") as f:
        data = f.read()
    head_end = data.find(b"\r\n\r\n")
    head_end = len(data) if head_end < 0 else head_end + 2
    stripped, n = _TUID_RE.subn(b"", data[:head_end], count=1)
    if n == 0:
        return None
    digest = hashlib.sha256(stripped + data[head_end:]).hexdigest()
    return (digest, len(stripped) + len(data) - head_end) if digest in source_hashes else None


def verify_tool_maildir(source, root):
    """A reference tool's Maildir tree against the source, as one multiset of messages."""
    if not os.path.isdir(root):
        return Verdict(False, "WRONG: no output at %s" % root)
    found = verify.read_maildir(root, layout="fs", decoder=lambda rel: rel, delimiter="/")
    actual = flatten(found)
    expected = flatten(source)
    source_hashes = expected.hashes()
    altered = 0
    for m in actual["*"]:
        if m["sha256"] in source_hashes:
            continue
        fixed = _untuid(os.path.join(root, m["file"]), source_hashes)
        if fixed:
            m["sha256"], m["size"] = fixed
            altered += 1
    diffs = verify.compare(expected, actual, flags=True, dates=True, sizes=True)
    kinds = Counter(d.kind for d in diffs)
    lost = {k: kinds.pop(k) for k in ("flag-mismatch", "date-mismatch") if k in kinds}
    # Keyword letters a tool wrote without a dovecot-keywords file are flag losses, not strays.
    stray = [s for s in found.stray if "not in dovecot-keywords" not in s]
    if stray:
        kinds["stray file"] = len(stray)
    notes = []
    if altered:
        notes.append("%d altered (X-TUID added)" % altered)
    if "flag-mismatch" in lost:
        notes.append("%d flags differ" % lost["flag-mismatch"])
    if "date-mismatch" in lost:
        notes.append("%d dates lost" % lost["date-mismatch"])
    if kinds:
        details = [str(d) for d in diffs if d.kind in kinds][:40] + stray[:10]
        return Verdict(False, "WRONG: " + _counts_text(kinds) + ("; " if notes else "")
                       + "; ".join(notes), details)
    if not notes:
        return Verdict(True, "exact")
    return Verdict(True, ("altered: " if altered else "bytes exact; ") + "; ".join(notes))


def verify_reader(source, stdout):
    """The limit reader stores nothing: it must have read every message and byte."""
    match = re.search(r"messages=(\d+) bytes=(\d+)", stdout)
    if not match:
        return Verdict(False, "WRONG: no totals in its output")
    messages, size = int(match.group(1)), int(match.group(2))
    if (messages, size) != (source.count(), source.total_bytes()):
        return Verdict(False, "WRONG: read %d messages, %d bytes; source has %d, %d" % (
            messages, size, source.count(), source.total_bytes()))
    return Verdict(True, "read all (count, bytes)")
