"""IMAP helpers on top of imaplib: LIST parsing, pipelined APPEND, streaming FETCH.

imaplib alone would do, except that its append() rewrites line ends (every
CR or LF becomes CRLF) and waits for a round trip per message. append_many()
sends the exact bytes with LITERAL+ (RFC 7888) literals, many commands in
flight, through imaplib's documented send()/readline().
"""

import calendar
import hashlib
import re
import time

from . import mutf7

__all__ = [
    "FolderInfo",
    "FetchedMessage",
    "ImapError",
    "quote",
    "format_internaldate",
    "parse_internaldate",
    "list_folders",
    "append_many",
    "fetch_folder",
    "normalise_flags",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SPECIAL_USE_ATTRS = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")


class ImapError(RuntimeError):
    """A command the harness needs failed."""


class FolderInfo:
    """One LIST entry: name in UTF-8 (decoded mUTF-7), the raw name, delimiter, attributes."""

    __slots__ = ("name", "raw", "delimiter", "attributes")

    def __init__(self, name, raw, delimiter, attributes):
        self.name, self.raw, self.delimiter, self.attributes = name, raw, delimiter, attributes

    @property
    def selectable(self):
        lowered = {a.lower() for a in self.attributes}
        return "\\noselect" not in lowered and "\\nonexistent" not in lowered

    @property
    def special_use(self):
        for attr in self.attributes:
            for use in SPECIAL_USE_ATTRS:
                if attr.lower() == use.lower():
                    return use
        return None

    def __repr__(self):
        return "FolderInfo(%r, %r, %r)" % (self.name, self.delimiter, self.attributes)


class FetchedMessage:
    """What the server serves for one message (the body only as its hash)."""

    __slots__ = ("uid", "sha256", "flags", "internaldate", "size", "body_len", "body")

    def __init__(self, uid, sha256, flags, internaldate, size, body_len, body=None):
        self.uid, self.sha256, self.flags = uid, sha256, flags
        self.internaldate, self.size, self.body_len, self.body = internaldate, size, body_len, body


def quote(text):
    """An IMAP quoted string (the text must be 7-bit, e.g. an mUTF-7 name)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_internaldate(epoch):
    """Epoch seconds -> IMAP date-time in UTC ("05-Jan-2009 10:00:00 +0000"), locale-free."""
    t = time.gmtime(epoch)
    return "%02d-%s-%04d %02d:%02d:%02d +0000" % (
        t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


_DATE_RE = re.compile(r"\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")


def parse_internaldate(text):
    """IMAP date-time -> epoch seconds."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    m = _DATE_RE.fullmatch(text.strip('"'))
    if not m:
        raise ImapError("bad INTERNALDATE %r" % text)
    day, mon, year, hh, mm, ss, sign, tzh, tzm = m.groups()
    month = [x.lower() for x in _MONTHS].index(mon.lower()) + 1
    local = calendar.timegm((int(year), month, int(day), int(hh), int(mm), int(ss)))
    offset = (int(tzh) * 60 + int(tzm)) * 60
    return local - offset if sign == "+" else local + offset


def normalise_flags(flags):
    """Sorted tuple of flags without the session flag \\Recent."""
    return tuple(sorted(f for f in flags if f.lower() != "\\recent"))


def _check(response, what):
    typ, data = response
    if typ != "OK":
        raise ImapError("%s failed: %s %r" % (what, typ, data))
    return data


_LIST_RE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$', re.S)


def _unquote(raw):
    if raw.startswith(b'"') and raw.endswith(b'"'):
        return re.sub(rb"\\(.)", rb"\1", raw[1:-1])
    return raw


def list_folders(client, pattern="*"):
    """LIST "" pattern -> [FolderInfo], in the server's order."""
    data = _check(client.list('""', pattern), "LIST")
    folders = []
    items = iter(data)
    for item in items:
        if item is None:
            continue
        if isinstance(item, tuple):  # name sent as a literal
            head, literal = item
            m = _LIST_RE.match(head.rstrip())
            name_raw = literal
        else:
            m = _LIST_RE.match(item)
            name_raw = _unquote(m.group("name")) if m else None
        if not m:
            raise ImapError("cannot parse LIST line %r" % (item,))
        delim = m.group("delim")
        delimiter = None if delim == b"NIL" else _unquote(delim).decode("ascii")
        attrs = tuple(a.decode("ascii") for a in m.group("attrs").split())
        raw = name_raw.decode("ascii", errors="strict")
        folders.append(FolderInfo(mutf7.decode(raw), raw, delimiter, attrs))
    return folders


def append_many(client, items, window_bytes=8 << 20, window_count=256):
    """APPEND every (raw_mailbox, flags, internaldate, data) with LITERAL+, pipelined.

    Returns [(uidvalidity, uid)] in order (APPENDUID, RFC 4315). The bytes go
    to the server unchanged. Consecutive messages for one mailbox go in one
    MULTIAPPEND (RFC 3502) command when the server offers it: Dovecot then
    saves them in one transaction, which is many times faster than one APPEND
    each. Commands are sent in windows (bounded bytes and count) and their
    replies collected before the next window, so neither side's socket buffer
    can fill up with unread data.
    """
    caps = _capabilities(client)
    for needed in ("LITERAL+", "UIDPLUS"):
        if needed not in caps:
            raise ImapError("server lacks %s, which append_many needs" % needed)
    multi = "MULTIAPPEND" in caps
    results = []
    batch = []
    batch_bytes = 0
    for item in items:
        batch.append(item)
        batch_bytes += len(item[3])
        if len(batch) >= window_count or batch_bytes >= window_bytes:
            results += _append_window(client, batch, len(results), multi)
            batch, batch_bytes = [], 0
    if batch:
        results += _append_window(client, batch, len(results), multi)
    return results


def _capabilities(client):
    data = _check(client.capability(), "CAPABILITY")
    return {c.upper() for c in data[-1].decode("ascii").split()}


_APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) ([0-9:,]+)\]", re.I)


def _uid_set(text):
    uids = []
    for part in text.split(b","):
        lo, _, hi = part.partition(b":")
        lo = int(lo)
        hi = int(hi) if hi else lo
        uids += list(range(min(lo, hi), max(lo, hi) + 1))
    return uids


def _groups(batch, multi):
    """Runs of consecutive items for the same mailbox (single items without MULTIAPPEND)."""
    groups = []
    for item in batch:
        if multi and groups and groups[-1][0][0] == item[0]:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _append_command(tag, group):
    parts = [tag + b" APPEND " + quote(group[0][0]).encode("ascii")]
    for _mailbox, flags, date, data in group:
        message = []
        if flags:
            message.append(b"(" + " ".join(flags).encode("ascii") + b")")
        if date is not None:
            message.append(quote(format_internaldate(date)).encode("ascii"))
        message.append(b"{%d+}\r\n" % len(data))
        parts.append(b" " + b" ".join(message) + data)
    return b"".join(parts) + b"\r\n"


def _append_window(client, batch, first_index, multi):
    groups = _groups(batch, multi)
    tags = [b"GWA%06d" % (first_index + i) for i in range(len(groups))]
    client.send(b"".join(_append_command(tag, group) for tag, group in zip(tags, groups)))
    replies = {}
    while len(replies) < len(tags):
        line = _read_response_line(client)
        tag, _, rest = line.partition(b" ")
        if tag in tags:
            replies[tag] = rest
        elif tag != b"*":
            raise ImapError("unexpected line during APPEND: %r" % line[:200])
    results = []
    for tag, group in zip(tags, groups):
        rest = replies[tag]
        m = _APPENDUID_RE.search(rest)
        size = sum(len(item[3]) for item in group)
        if not rest.upper().startswith(b"OK") or not m:
            raise ImapError("APPEND of %d message(s), %d bytes, to %r failed: %r"
                            % (len(group), size, group[0][0], rest[:300]))
        uids = _uid_set(m.group(2))
        if len(uids) != len(group):
            raise ImapError("APPENDUID names %d UIDs for %d messages" % (len(uids), len(group)))
        results += [(int(m.group(1)), uid) for uid in uids]
    return results


def _read_response_line(client):
    """One response line; literals inside untagged data are read and dropped."""
    line = client.readline()
    if not line:
        raise ImapError("server closed the connection")
    while True:
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if not m:
            return line.rstrip(b"\r\n")
        client.read(int(m.group(1)))
        line = client.readline()


_ITEM_RES = {
    "uid": re.compile(rb"\bUID (\d+)"),
    "size": re.compile(rb"\bRFC822\.SIZE (\d+)"),
    "date": re.compile(rb'\bINTERNALDATE "([^"]+)"'),
    "flags": re.compile(rb"\bFLAGS \(([^)]*)\)"),
}


def _items(text):
    found = {}
    for key, rx in _ITEM_RES.items():
        m = rx.search(text)
        if m:
            found[key] = m.group(1)
    return found


def fetch_folder(client, raw_name, with_body=True, keep_body=False, chunk=200):
    """EXAMINE a folder and fetch every message: [FetchedMessage] by ascending UID.

    Metadata comes in one UID FETCH 1:*; bodies (BODY.PEEK[], so \\Seen is
    untouched) in chunks of @chunk messages, hashed and dropped unless
    @keep_body, so memory stays bounded on large folders.
    """
    _check(client.select(quote(raw_name), readonly=True), "EXAMINE %s" % raw_name)
    typ, data = client.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
    if typ != "OK":
        raise ImapError("UID FETCH metadata in %s failed: %r" % (raw_name, data))
    meta = {}
    for item in data:
        if item is None:
            continue
        text = item[0] if isinstance(item, tuple) else item
        found = _items(text)
        if "uid" not in found:
            continue  # e.g. "* n EXISTS" leftovers; the folder may also be empty
        meta[int(found["uid"])] = found
    uids = sorted(meta)
    bodies = {}
    if with_body:
        for start in range(0, len(uids), chunk):
            part = uids[start : start + chunk]
            bodies.update(_fetch_bodies(client, raw_name, part, keep_body))
    out = []
    for uid in uids:
        found = meta[uid]
        flags = normalise_flags(found.get("flags", b"").decode("utf-8").split())
        digest, length, body = bodies.get(uid, (None, None, None))
        out.append(FetchedMessage(uid, digest, flags, parse_internaldate(found["date"]),
                                  int(found["size"]), length, body))
    client.close()
    return out


def _fetch_bodies(client, raw_name, uids, keep_body):
    uid_set = ",".join(str(u) for u in uids)
    typ, data = client.uid("FETCH", uid_set, "(UID BODY.PEEK[])")
    if typ != "OK":
        raise ImapError("UID FETCH bodies in %s failed: %r" % (raw_name, data))
    got = {}
    for index, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        head, literal = item
        # Items after the literal (e.g. a UID sent last) arrive as the next element.
        tail = data[index + 1] if index + 1 < len(data) else b""
        found = _items(head + b" " + (tail if isinstance(tail, bytes) else b""))
        if "uid" not in found or b"BODY[]" not in head:
            continue
        got[int(found["uid"])] = (
            hashlib.sha256(literal).hexdigest(), len(literal), literal if keep_body else None)
    missing = [u for u in uids if u not in got]
    if missing:
        raise ImapError("server sent no BODY[] for UIDs %s in %s" % (missing[:10], raw_name))
    return got
