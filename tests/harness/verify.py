"""Manifests of mailboxes and their comparison: what the end-to-end tests assert with.

A Manifest maps a folder name (UTF-8, full path with the hierarchy delimiter)
to the list of its messages; a message is a dict
    {"uid", "sha256", "flags", "internaldate", "size"}
(plus "origin" when the seeder knows where it came from, "file" for Maildir
files). flags is a sorted tuple without \\Recent; internaldate is epoch
seconds; sha256 is over the exact bytes (what the server serves for BODY[];
the file's bytes in a Maildir).

    source = read_server(client)                     # (a)
    sink = read_maildir(path, decoder=...)           # (b)
    assert compare(source, sink) == []               # (c), differences listed precisely
"""

import hashlib
import os
import re
from collections import Counter, defaultdict

from . import imapio, mutf7

__all__ = [
    "Manifest",
    "Difference",
    "read_server",
    "read_maildir",
    "compare",
    "format_differences",
    "dovecot_maildirpp_decoder",
    "sink_maildir_decoder",
    "read_sink_maildir",
    "SINK_FLAG_LETTERS",
    "DOVECOT_FLAG_LETTERS",
]


class Manifest(dict):
    """folder name -> [message dict]; plus per-folder facts as attributes.

    special_use: name -> "\\Sent" etc.; noselect: names that exist only as
    parents; delimiter: the hierarchy delimiter; stray: files that do not
    belong (e.g. left in a Maildir's tmp/).
    """

    def __init__(self, delimiter="/"):
        super().__init__()
        self.delimiter = delimiter
        self.special_use = {}
        self.noselect = set()
        self.stray = []

    def count(self):
        return sum(len(msgs) for msgs in self.values())

    def total_bytes(self):
        return sum(m["size"] for msgs in self.values() for m in msgs)

    def hashes(self, folder=None):
        """Counter of sha256 over one folder or the whole mailbox."""
        folders = [folder] if folder is not None else list(self)
        return Counter(m["sha256"] for f in folders for m in self.get(f, ()))

    def by_date(self):
        """Every (folder, message), newest first (ties: folder, uid)."""
        items = [(f, m) for f, msgs in self.items() for m in msgs]
        items.sort(key=lambda fm: (-fm[1]["internaldate"], fm[0], fm[1].get("uid") or 0))
        return items

    def summary(self):
        return "%d folders, %d messages, %d bytes" % (len(self), self.count(), self.total_bytes())


class Difference:
    """One difference between an expected and an actual manifest."""

    KINDS = (
        "folder-missing",
        "folder-extra",
        "special-use-mismatch",
        "missing",
        "extra",
        "duplicate",
        "hash-mismatch",
        "size-mismatch",
        "flag-mismatch",
        "date-mismatch",
    )

    __slots__ = ("kind", "folder", "expected", "actual", "detail")

    def __init__(self, kind, folder, expected=None, actual=None, detail=""):
        assert kind in self.KINDS, kind
        self.kind, self.folder, self.expected, self.actual, self.detail = (
            kind, folder, expected, actual, detail)

    def __repr__(self):
        return "Difference(%s)" % self

    def __str__(self):
        text = "%s in %r" % (self.kind, self.folder)
        if self.detail:
            text += ": " + self.detail
        return text


def format_differences(differences, limit=50):
    lines = [str(d) for d in differences[:limit]]
    if len(differences) > limit:
        lines.append("... and %d more" % (len(differences) - limit))
    return "\n".join(lines)


# --- (a) server ------------------------------------------------------------------------


def read_server(client, skip=()):
    """Every folder of the logged-in user, as the server serves it.

    @skip: folder names (UTF-8) to leave out. A message whose RFC822.SIZE differs
    from the length of its BODY[] is listed in manifest.stray.
    """
    folders = imapio.list_folders(client)
    delimiter = next((f.delimiter for f in folders if f.delimiter), "/")
    manifest = Manifest(delimiter)
    for info in folders:
        if info.name in skip:
            continue
        if info.special_use:
            manifest.special_use[info.name] = info.special_use
        if not info.selectable:
            manifest.noselect.add(info.name)
            manifest[info.name] = []
            continue
        messages = manifest[info.name] = []
        for m in imapio.fetch_folder(client, info.raw):
            if m.size != m.body_len:
                manifest.stray.append("%s uid %d: RFC822.SIZE %d but BODY[] has %d bytes"
                                      % (info.name, m.uid, m.size, m.body_len))
            messages.append({"uid": m.uid, "sha256": m.sha256, "flags": m.flags,
                             "internaldate": m.internaldate, "size": m.size})
    return manifest


# --- (b) Maildir -----------------------------------------------------------------------

# Maildir info letters -> IMAP system flags (Dovecot's mapping; "P"assed is not an
# IMAP flag, Dovecot keeps it only on disk).
DOVECOT_FLAG_LETTERS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}

_LISTESCAPE_RE = re.compile(r"\\([0-9a-fA-F]{2})")


def dovecot_maildirpp_decoder(delimiter="/", prefix=""):
    """Decoder for Dovecot's own Maildir++ folders: ".A.B" -> prefix + "A<delim>B".

    Components are modified UTF-7 with listescape's "\\xx" escapes (e.g. "\\2e" for
    a "." inside a name). INBOX is the Maildir root.
    """

    def decode(dirname):
        parts = dirname.split(".")
        names = [mutf7.decode(_LISTESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), p))
                 for p in parts]
        return prefix + delimiter.join(names)

    return decode


_SINK_ESCAPE_RE = re.compile(rb"\\([0-9a-f]{2})")
_SINK_SHORTENED_RE = re.compile(rb"~[0-9a-f]{8}$")


def _sink_component(component):
    raw = component.encode("utf-8", "surrogateescape")
    if 197 <= len(raw) <= 200 and _SINK_SHORTENED_RE.search(raw):
        raise ValueError("shortened folder name %r cannot be decoded" % component)
    return _SINK_ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 16)]), raw).decode("utf-8")


def sink_maildir_decoder(delimiter="/", layout="maildir++"):
    """Decoder for the godwit maildir sink (plugins/sink-maildir/README.md, "Folder names").

    Components are UTF-8 with "\\xx" escapes (lower-case hex) of single bytes; in
    Maildir++ they are joined by ".", in the fs layout by "/". A shortened
    (over-long) name cannot be decoded and raises ValueError.
    """
    split_at = "." if layout == "maildir++" else os.sep

    def decode(rel):
        if layout == "maildir++" and 252 <= len(rel.encode("utf-8", "surrogateescape")) <= 255 \
                and _SINK_SHORTENED_RE.search(rel.encode("utf-8", "surrogateescape")):
            raise ValueError("shortened folder name %r cannot be decoded" % rel)
        return delimiter.join(_sink_component(c) for c in rel.split(split_at))

    return decode


# The sink writes $Forwarded as the Maildir flag P (its README, "Messages").
SINK_FLAG_LETTERS = dict(DOVECOT_FLAG_LETTERS, P="$Forwarded")


def read_sink_maildir(root, layout="maildir++", delimiter="/"):
    """A Maildir written by the godwit maildir sink, as a Manifest."""
    return read_maildir(root, decoder=sink_maildir_decoder(delimiter, layout), layout=layout,
                        delimiter=delimiter, flag_letters=SINK_FLAG_LETTERS)


def _keyword_map(folder_dir):
    """dovecot-keywords: "<index> <name>" lines (index 0 is letter a); "<letter> <name>" too."""
    path = os.path.join(folder_dir, "dovecot-keywords")
    letters = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, _, name = line.rstrip("\n").partition(" ")
                if not name:
                    continue
                if key.isdigit() and int(key) < 26:
                    letters[chr(ord("a") + int(key))] = name
                elif len(key) == 1 and "a" <= key <= "z":
                    letters[key] = name
    except FileNotFoundError:
        pass
    return letters


def _flags_of(filename, keywords, flag_letters, problems, where):
    base, sep, info = filename.rpartition(":2,")
    if not sep:
        return ()
    flags = []
    for letter in info:
        if letter in flag_letters:
            flags.append(flag_letters[letter])
        elif "a" <= letter <= "z":
            if letter in keywords:
                flags.append(keywords[letter])
            else:
                problems.append("%s: keyword letter %r not in dovecot-keywords" % (where, letter))
        elif letter.isupper():
            continue  # a Maildir flag IMAP has no name for (e.g. "P"assed)
        else:
            problems.append("%s: unexpected info character %r" % (where, letter))
    return imapio.normalise_flags(flags)


def _read_folder(folder_dir, rel, flag_letters, manifest):
    keywords = _keyword_map(folder_dir)
    messages = []
    for sub in ("new", "cur"):
        sub_dir = os.path.join(folder_dir, sub)
        try:
            names = sorted(os.listdir(sub_dir))
        except FileNotFoundError:
            continue
        for name in names:
            if name.startswith("."):
                continue
            path = os.path.join(sub_dir, name)
            with open(path, "rb") as f:
                data = f.read()
            where = os.path.join(rel, sub, name)
            messages.append({
                "uid": None,
                "sha256": hashlib.sha256(data).hexdigest(),
                "flags": _flags_of(name, keywords, flag_letters, manifest.stray, where),
                "internaldate": int(os.stat(path).st_mtime),
                "size": len(data),
                "file": where,
            })
    for name in sorted(os.listdir(os.path.join(folder_dir, "tmp")) if os.path.isdir(
            os.path.join(folder_dir, "tmp")) else ()):
        manifest.stray.append(os.path.join(rel, "tmp", name))
    return messages


def _is_maildir(path):
    return any(os.path.isdir(os.path.join(path, sub)) for sub in ("cur", "new"))


def read_maildir(root, decoder=None, layout="maildir++", inbox_name="INBOX", delimiter="/",
                 flag_letters=DOVECOT_FLAG_LETTERS):
    """A Maildir tree as a Manifest.

    layout "maildir++": @root is INBOX; each ".<name>" subdirectory with cur/ or new/
    is a folder whose name is decoder("<name>") (default: Dovecot's mUTF-7 rule).
    layout "fs": every directory below @root with cur/ or new/ is a folder; the
    decoder gets its relative path ("A/B") and returns the folder name; @root
    itself, if it is a maildir, is @inbox_name.
    Files in tmp/ and flag letters without a keyword are listed in manifest.stray.
    """
    if decoder is None:
        decoder = dovecot_maildirpp_decoder(delimiter) if layout == "maildir++" else (
            lambda rel: rel.replace(os.sep, delimiter))
    manifest = Manifest(delimiter)
    if not os.path.isdir(root):
        raise FileNotFoundError("maildir root %s does not exist" % root)
    if _is_maildir(root):
        manifest[inbox_name] = _read_folder(root, "", flag_letters, manifest)
    if layout == "maildir++":
        for entry in sorted(os.listdir(root)):
            path = os.path.join(root, entry)
            if entry.startswith(".") and entry not in (".", "..") and _is_maildir(path):
                name = decoder(entry[1:])
                if name in manifest:
                    manifest.stray.append("%s: decodes to %r, which another directory has" % (entry, name))
                    continue
                manifest[name] = _read_folder(path, entry, flag_letters, manifest)
    elif layout == "fs":
        for dirpath, dirnames, _files in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in ("cur", "new", "tmp"))
            if dirpath == root or not _is_maildir(dirpath):
                continue
            rel = os.path.relpath(dirpath, root)
            manifest[decoder(rel)] = _read_folder(dirpath, rel, flag_letters, manifest)
    else:
        raise ValueError("layout must be 'maildir++' or 'fs'")
    return manifest


# --- (c) comparison --------------------------------------------------------------------


def _describe(msg):
    label = msg.get("origin") or msg.get("file") or ("uid %s" % msg.get("uid"))
    return "%s (sha256 %s, %d bytes, date %d, flags %s)" % (
        label, (msg["sha256"] or "?")[:12], msg["size"], msg["internaldate"], " ".join(msg["flags"]) or "-")


def _ancestors(name, delimiter):
    parts = name.split(delimiter)
    return {delimiter.join(parts[:i]) for i in range(1, len(parts))}


def _map_names(manifest, folder_map):
    if not folder_map:
        return manifest
    mapped = Manifest(manifest.delimiter)
    lookup = folder_map if callable(folder_map) else (lambda n: folder_map.get(n, n))
    for name, msgs in manifest.items():
        target = lookup(name)
        if target is None:
            continue  # excluded by the mapping
        mapped.setdefault(target, []).extend(msgs)
        if name in manifest.noselect:
            mapped.noselect.add(target)
        if name in manifest.special_use:
            mapped.special_use[target] = manifest.special_use[name]
    return mapped


def compare(expected, actual, flags=True, dates=True, sizes=True, special_use=False,
            folder_map=None, ignore_folders=()):
    """Differences between two manifests (empty list: equal).

    Messages are matched within a folder by sha256 (as multisets). Unmatched
    ones with the same internal date on both sides are reported as one
    hash-mismatch; the rest as missing / extra. A hash present more often in
    @actual than in @expected is a duplicate. Matched messages are checked for
    flags, internal date and size as asked. Folders: an expected folder absent
    from @actual is folder-missing, unless it is an empty \\Noselect parent of a
    folder that is present; an actual folder not expected is folder-extra
    unless it is an empty parent of an expected folder. @folder_map (dict or
    callable; None drops a folder) renames expected folders first.
    """
    expected = _map_names(expected, folder_map)
    diffs = []
    exp_names = {n for n in expected if n not in ignore_folders}
    act_names = {n for n in actual if n not in ignore_folders}
    act_parents = set().union(*(_ancestors(n, actual.delimiter) for n in act_names)) if act_names else set()
    exp_parents = set().union(*(_ancestors(n, expected.delimiter) for n in exp_names)) if exp_names else set()
    for name in sorted(exp_names - act_names):
        if not expected[name] and name in expected.noselect and name in act_parents:
            continue
        diffs.append(Difference("folder-missing", name, detail="%d messages expected" % len(expected[name])))
    for name in sorted(act_names - exp_names):
        if not actual[name] and name in exp_parents:
            continue
        diffs.append(Difference("folder-extra", name, detail="%d messages" % len(actual[name])))
    for name in sorted(exp_names & act_names):
        if special_use and expected.special_use.get(name) != actual.special_use.get(name):
            diffs.append(Difference("special-use-mismatch", name, expected.special_use.get(name),
                                    actual.special_use.get(name),
                                    "%s != %s" % (expected.special_use.get(name), actual.special_use.get(name))))
        diffs += _compare_folder(name, expected[name], actual[name], flags, dates, sizes)
    return diffs


def _compare_folder(folder, exp_msgs, act_msgs, flags, dates, sizes):
    diffs = []
    exp_by = defaultdict(list)
    act_by = defaultdict(list)
    for m in exp_msgs:
        exp_by[m["sha256"]].append(m)
    for m in act_msgs:
        act_by[m["sha256"]].append(m)
    left_exp, left_act = [], []
    order = lambda m: (m["internaldate"], m["flags"], m.get("uid") or 0, m.get("file") or "")
    for digest in sorted(set(exp_by) | set(act_by), key=lambda d: d or ""):
        e = sorted(exp_by.get(digest, []), key=order)
        a = sorted(act_by.get(digest, []), key=order)
        if e and len(a) > len(e):
            for extra in a[len(e):]:
                diffs.append(Difference("duplicate", folder, None, extra,
                                        "%s appears %d times, expected %d" % (_describe(extra), len(a), len(e))))
        for em, am in zip(e, a):
            diffs += _compare_pair(folder, em, am, flags, dates, sizes)
        if len(e) > len(a):
            left_exp += e[len(a):]
        if not e:
            left_act += a
    # An unmatched pair with the same internal date is one message with changed bytes.
    act_by_date = defaultdict(list)
    for m in left_act:
        act_by_date[m["internaldate"]].append(m)
    for em in left_exp:
        candidates = act_by_date.get(em["internaldate"])
        if candidates:
            am = candidates.pop(0)
            left_act.remove(am)
            diffs.append(Difference("hash-mismatch", folder, em, am, "%s became %s" % (_describe(em), _describe(am))))
        else:
            diffs.append(Difference("missing", folder, em, None, _describe(em)))
    for am in left_act:
        diffs.append(Difference("extra", folder, None, am, _describe(am)))
    return diffs


def _compare_pair(folder, em, am, flags, dates, sizes):
    diffs = []
    if flags and tuple(em["flags"]) != tuple(am["flags"]):
        diffs.append(Difference("flag-mismatch", folder, em, am, "%s: %s != %s" % (
            _describe(em), " ".join(em["flags"]) or "-", " ".join(am["flags"]) or "-")))
    if dates and em["internaldate"] != am["internaldate"]:
        diffs.append(Difference("date-mismatch", folder, em, am, "%s: %d != %d" % (
            _describe(em), em["internaldate"], am["internaldate"])))
    if sizes and em["size"] != am["size"]:
        diffs.append(Difference("size-mismatch", folder, em, am, "%s: %d != %d" % (
            _describe(em), em["size"], am["size"])))
    return diffs
