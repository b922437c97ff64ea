"""A deterministic benchmark corpus written straight into a Dovecot user's Maildir.

APPENDing 20,000 messages (1 GB) over IMAP would take longer than the benchmark
itself, so the files are written the way Dovecot's own Maildir++ store keeps
them: one file per message in <folder>/cur/, flags in the name (":2,FRS" plus
keyword letters listed in dovecot-keywords), the INTERNALDATE as the file's
mtime, owner the mail user. Every message is CRLF-only and NUL-free, so the
bytes Dovecot serves for BODY[] are exactly the file's bytes (the harness's
mailgen.served_by_dovecot() is applied to corpus files to make sure of it).

The same (count, seed) always gives the same bytes, flags, dates and folders.

    plan = CorpusPlan(count=20000, seed=1)
    summary = write_user_maildir(dv, "alice", plan)   # -> Corpus (expected manifest, sizes)
"""

import hashlib
import math
import os
import random
from dataclasses import dataclass, field

from harness import mailgen, mutf7, seed, verify

__all__ = ["FOLDERS", "CorpusPlan", "Corpus", "write_user_maildir", "size_class"]

# 30 folders; INBOX is the Maildir root. Parents of nested folders are real folders
# too (Archive), except "Clients" and "Ärger", which exist only as parents.
FOLDERS = (
    ("INBOX",), ("Sent",), ("Drafts",), ("Trash",), ("Junk",), ("Archive",),
    *[("Archive", str(year)) for year in range(2012, 2025)],  # 13
    ("Projects",), ("Projects", "Q1 Planning"), ("Projects", "Q1 Planning", "Deep Nest"),
    ("Clients", "ACME"), ("Clients", "Initech"), ("Clients", "Umbrella & Co"),
    ("R&D",), ("Ärger", "Überfällig"), ("Newsletters",), ("Receipts",), ("Travel",),
)
assert len(FOLDERS) == 30, len(FOLDERS)

# Where mail is: most in INBOX, Sent and the yearly archives, little elsewhere.
_FOLDER_WEIGHTS = {("INBOX",): 20, ("Sent",): 10, ("Archive",): 4}

KB = 1024
SMALL_RANGE = (2 * KB, 30 * KB)
ATTACH_RANGE = (100 * KB, 2048 * KB)
HUGE_RANGE = (5 * 1024 * KB, 20 * 1024 * KB)
ATTACH_SHARE = 0.10
HUGE_SHARE = 0.0005  # 10 in 20,000
CORPUS_SHARE = 0.10  # at most this share of the messages come from ../shared/corpus

# Dovecot's Maildir letters for IMAP system flags (verify.DOVECOT_FLAG_LETTERS reversed).
_LETTER_OF = {flag: letter for letter, flag in verify.DOVECOT_FLAG_LETTERS.items()}


def size_class(size):
    if size >= HUGE_RANGE[0]:
        return "huge"
    return "attachment" if size >= ATTACH_RANGE[0] else "small"


@dataclass
class CorpusPlan:
    count: int = 20000
    seed: int = 1
    use_shared_corpus: bool = True
    folders: int = len(FOLDERS)  # mail goes into the first N of FOLDERS (1: all in INBOX)


@dataclass
class Corpus:
    """What was written: the expected manifest (folder -> messages) and where it came from."""

    user: str
    manifest: verify.Manifest
    corpus_status: str
    classes: dict = field(default_factory=dict)  # size class -> (count, bytes)

    @property
    def count(self):
        return self.manifest.count()

    @property
    def total_bytes(self):
        return self.manifest.total_bytes()

    def summary(self):
        parts = ", ".join("%s %d (%.1f MB)" % (k, n, b / 1e6) for k, (n, b) in
                          sorted(self.classes.items()))
        return "%d messages, %.1f MB in %d folders [%s]" % (
            self.count, self.total_bytes / 1e6, len(self.manifest), parts)


def _folder_name(path):
    return "INBOX" if path == ("INBOX",) else "/".join(path)


def _maildirpp_dir(root, path):
    """Dovecot's on-disk name: ".A.B", each component in modified UTF-7."""
    if path == ("INBOX",):
        return root
    return os.path.join(root, "." + ".".join(mutf7.encode(part) for part in path))


def _log_uniform(rng, low, high, skew=1.0):
    """A size in [low, high], log-uniform; skew > 1 leans towards low."""
    return int(low * math.exp(math.log(high / low) * rng.random() ** skew))


def _message_sizes(rng, count, corpus_count):
    """Target sizes of the generated messages (the corpus ones keep their own)."""
    generated = count - corpus_count
    huge = max(1, round(generated * HUGE_SHARE)) if generated >= 200 else 0
    huge_at = set(rng.sample(range(generated), huge))
    sizes = []
    for i in range(generated):
        if i in huge_at:
            sizes.append(_log_uniform(rng, *HUGE_RANGE))
        elif rng.random() < ATTACH_SHARE:
            # skew 2.5: mean ~370 KB, so the default corpus is ~1 GB.
            sizes.append(_log_uniform(rng, *ATTACH_RANGE, skew=2.5))
        else:
            sizes.append(_log_uniform(rng, *SMALL_RANGE))
    return sizes


def _generated_message(size, index, date, seed_value):
    """CRLF-only bytes of about @size bytes: plain text below 100 KB, else one attachment."""
    subject = "Bench message %d" % index
    if size < ATTACH_RANGE[0]:
        return mailgen.message_of_size(size, seed="%s-%d" % (seed_value, index), date=date,
                                       subject=subject)
    # base64 with 76-character lines and CRLF: 4/3 * 78/76 bytes per payload byte.
    payload = max(1, int((size - 1200) / (4 / 3 * 78 / 76)))
    return mailgen.multipart_with_attachments((payload,), seed="%s-%d" % (seed_value, index),
                                             date=date, subject=subject)


def _pick_folder(rng, folders):
    weights = [_FOLDER_WEIGHTS.get(path, 1.5 if path[0] == "Archive" else 1) for path in folders]
    return rng.choices(folders, weights)[0]


def _plan(plan):
    """[(folder path, origin, bytes-or-callable, date, flags)] in a fixed order."""
    rng = random.Random("bench-corpus-%s" % plan.seed)
    shared = seed.load_corpus() if plan.use_shared_corpus else None
    if shared is None:
        status = ("not used (--no-shared-corpus)" if not plan.use_shared_corpus else
                  "absent: %s not found, generated messages only" % seed.corpus_dir())
        shared = []
    else:
        take = min(len(shared), int(plan.count * CORPUS_SHARE))
        shared = shared[:take]
        status = "%d of the messages from %s" % (take, seed.corpus_dir())
    dates = mailgen.date_spread(plan.count, rng)
    sizes = _message_sizes(rng, plan.count, len(shared))
    items = []
    for index in range(plan.count):
        folder = _pick_folder(rng, FOLDERS[:plan.folders])
        flags = mailgen._pick_flags(rng)  # the harness's flag mix (keywords included)
        date = dates[index]
        if index < len(sizes):
            make = (lambda s=sizes[index], i=index, d=date:
                    _generated_message(s, i, d, plan.seed))
            items.append((folder, "gen/%d" % index, make, date, flags))
        else:
            name, data = shared[index - len(sizes)]
            items.append((folder, "corpus/" + name,
                          lambda b=data: mailgen.served_by_dovecot(b, mail_save_crlf=True),
                          date, flags))
    # Interleave corpus messages with generated ones across the folders.
    rng.shuffle(items)
    return items, status


class _FolderWriter:
    """One Maildir++ folder: creates cur/new/tmp and names files as Dovecot does."""

    def __init__(self, root, path, uid, gid):
        self.dir = _maildirpp_dir(root, path)
        self.uid, self.gid = uid, gid
        self.keywords = []
        for sub in ("cur", "new", "tmp"):
            self._mkdir(os.path.join(self.dir, sub))
        if path != ("INBOX",):
            marker = os.path.join(self.dir, "maildirfolder")
            open(marker, "wb").close()
            os.chown(marker, uid, gid)
        self.sequence = 0

    def _mkdir(self, path):
        if not os.path.isdir(path):
            parent = os.path.dirname(path)
            if not os.path.isdir(parent):
                self._mkdir(parent)
            os.mkdir(path, 0o700)
            os.chown(path, self.uid, self.gid)

    def _info(self, flags):
        letters = sorted(_LETTER_OF[f] for f in flags if f in _LETTER_OF)
        for keyword in (f for f in flags if not f.startswith("\\")):
            if keyword not in self.keywords:
                self.keywords.append(keyword)
            letters.append(chr(ord("a") + self.keywords.index(keyword)))
        return ":2," + "".join(sorted(letters))

    def write(self, data, date, flags):
        self.sequence += 1
        # S= and W= (physical and CRLF size; equal for CRLF-only files) spare Dovecot
        # from reading each file to learn its size.
        name = "%d.M%dP1.bench,S=%d,W=%d%s" % (date, self.sequence, len(data), len(data),
                                               self._info(flags))
        path = os.path.join(self.dir, "cur", name)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, self.uid, self.gid)
        os.utime(path, (date, date))

    def finish(self):
        if self.keywords:
            path = os.path.join(self.dir, "dovecot-keywords")
            with open(path, "w", encoding="utf-8") as f:
                f.writelines("%d %s\n" % (i, k) for i, k in enumerate(self.keywords))
            os.chown(path, self.uid, self.gid)


def write_user_maildir(dv, user, plan, out=None):
    """Write @plan's messages into @user's (empty) Maildir on the harness Dovecot @dv."""
    home = dv.home_of(user)
    st = os.stat(home)
    root = dv.maildir_of(user)
    if os.path.exists(os.path.join(root, "cur")):
        raise RuntimeError("%s already has a Maildir; the corpus goes into a fresh user" % user)
    items, status = _plan(plan)
    # INBOX and the five special-use folders always exist (Dovecot creates those itself).
    folders = FOLDERS[:max(plan.folders, 6)]
    writers = {path: _FolderWriter(root, path, st.st_uid, st.st_gid) for path in folders}
    manifest = verify.Manifest("/")
    for path in folders:
        manifest[_folder_name(path)] = []
    classes = {}
    for done, (path, origin, make, date, flags) in enumerate(items, 1):
        data = make()
        writers[path].write(data, date, flags)
        # What a Dovecot with mail_save_crlf = no serves after this message is APPENDed
        # to it (the imap sink's destination): bare CRs are not kept as they are.
        appended = mailgen.served_by_dovecot(data, mail_save_crlf=False)
        manifest[_folder_name(path)].append({
            "uid": None, "sha256": hashlib.sha256(data).hexdigest(),
            "appended_sha256": hashlib.sha256(appended).hexdigest(), "appended_size": len(appended),
            "flags": tuple(sorted(flags)), "internaldate": date, "size": len(data),
            "origin": origin})
        kind = "corpus" if origin.startswith("corpus/") else size_class(len(data))
        n, b = classes.get(kind, (0, 0))
        classes[kind] = (n + 1, b + len(data))
        if out and done % 5000 == 0:
            out.write("corpus: %d of %d messages written\n" % (done, len(items)))
            out.flush()
    for w in writers.values():
        w.finish()
    # Parents that are not folders themselves ("Clients", "Ärger") are \Noselect on the server.
    for name in ("Clients", "Ärger"):
        if any(path[0] == name for path in folders):
            manifest.noselect.add(name)
            manifest.setdefault(name, [])
    return Corpus(user, manifest, status, classes)
