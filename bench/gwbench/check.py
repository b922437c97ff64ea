"""Did a run copy every message? Verdicts built on tests/harness/verify.py.

godwit is held to the harness's full comparison (folder tree, bytes, flags,
internal dates: verify.compare); anything but no difference is WRONG.

The reference tools name folders their own way, so their output is compared
as one multiset over the whole mailbox: every message file found anywhere in a
cur/ or new/ below the destination, by SHA-256, against the source's. A file
that matches a source message only after undoing a known change (removing the
`X-TUID:` header line mbsync adds to find the messages it stored; turning the
Unix line ends OfflineIMAP writes back into CRLF) is counted as altered, with
the change named, not as missing; flags and dates of matched messages are
compared and reported, but
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
    ok: bool  # every message there, nothing extra; bytes equal or altered in a known way
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


def verify_godwit_maildir(source, root):
    """The godwit maildir sink's tree against the source manifest, as the tests do."""
    if not os.path.isdir(root):
        return Verdict(False, "WRONG: no output at %s" % root)
    sink = verify.read_sink_maildir(root)
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


def _strip_tuid(data):
    """@data without mbsync's X-TUID header line, or None if it has none."""
    # The header ends with the line break before the empty line (kept in the head part).
    ends = [i + len(sep) // 2 for sep in (b"\r\n\r\n", b"\n\n")
            for i in (data.find(sep),) if i >= 0]
    head_end = min(ends) if ends else len(data)
    stripped, n = _TUID_RE.subn(b"", data[:head_end], count=1)
    return stripped + data[head_end:] if n else None


def _crlf(data):
    """Bare LF -> CRLF: undoes a tool that stored the message with Unix line ends."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


# Known, named alterations, tried in order: the first that turns the file back into a
# source message says what the tool changed.
_ALTERATIONS = (
    ("X-TUID added", _strip_tuid),
    ("line ends CRLF->LF", _crlf),
    ("X-TUID added, line ends CRLF->LF", lambda d: _strip_tuid(_crlf(d)) if b"X-TUID" in d else None),
)


def _explain(path, source_hashes):
    """(alteration, sha256, size) if the file is a source message changed in a known way."""
    with open(path, "rb") as f:
        data = f.read()
    for name, undo in _ALTERATIONS:
        restored = undo(data)
        if restored is None or restored == data:
            continue
        digest = hashlib.sha256(restored).hexdigest()
        if digest in source_hashes:
            return name, digest, len(restored)
    return None


def verify_tool_maildir(source, root):
    """A reference tool's Maildir tree against the source, as one multiset of messages."""
    if not os.path.isdir(root):
        return Verdict(False, "WRONG: no output at %s" % root)
    # "P" (passed) is $Forwarded, as in the Maildir convention mbsync and godwit follow.
    found = verify.read_maildir(root, layout="fs", decoder=lambda rel: rel, delimiter="/",
                                flag_letters=verify.SINK_FLAG_LETTERS)
    actual = flatten(found)
    expected = flatten(source)
    source_hashes = expected.hashes()
    altered = Counter()
    for m in actual["*"]:
        if m["sha256"] in source_hashes:
            continue
        explained = _explain(os.path.join(root, m["file"]), source_hashes)
        if explained:
            what, m["sha256"], m["size"] = explained
            altered[what] += 1
    diffs = verify.compare(expected, actual, flags=True, dates=True, sizes=True)
    kinds = Counter(d.kind for d in diffs)
    lost = {k: kinds.pop(k) for k in ("flag-mismatch", "date-mismatch") if k in kinds}
    # Keyword letters a tool wrote without a dovecot-keywords file are flag losses, not strays.
    stray = [s for s in found.stray if "not in dovecot-keywords" not in s]
    if stray:
        kinds["stray file"] = len(stray)
    notes = []
    for what, n in sorted(altered.items()):
        notes.append("%d altered (%s)" % (n, what))
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


def verify_appended(source, client):
    """limit --append: each folder of the destination holds the source folder's messages
    (as Dovecot stores an APPEND), byte for byte; flags and dates are not copied."""
    actual = verify.read_server(client)
    got = Counter((name, m["sha256"]) for name, msgs in actual.items() for m in msgs)
    expected = Counter((name, m["sha256"]) for name, msgs in source.items() for m in msgs)
    if got != expected:
        return Verdict(False, "WRONG: appended %d messages, %d differ from the source's %d"
                       % (sum(got.values()), sum((got - expected).values()),
                          sum(expected.values())))
    return Verdict(True, "appended all (hashes)")


def verify_stored(source, cur):
    """limit --store wrote one file per message: the multiset of their hashes is the source's."""
    stored = Counter()
    for name in os.listdir(cur):
        with open(os.path.join(cur, name), "rb") as f:
            stored[hashlib.sha256(f.read()).hexdigest()] += 1
    expected = Counter(m["sha256"] for msgs in source.values() for m in msgs)
    if stored != expected:
        return Verdict(False, "WRONG: stored %d files, %d differ from the source's %d messages"
                       % (sum(stored.values()), sum((stored - expected).values()),
                          sum(expected.values())))
    return Verdict(True, "stored all (hashes)")
