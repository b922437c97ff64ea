"""Seed a user's mailbox on the private Dovecot: folder tree, generated mail, corpus.

    result = seed_user(dv, "alice")          # the default tree, edge cases, 60 generated,
                                             # and ../shared/corpus when present
    result.manifest                          # verify.Manifest fetched back from the server
    result.problems                          # [] unless the server changed something unexpectedly

Messages go in with pipelined LITERAL+ MULTIAPPENDs on one connection (exact
bytes, flags, INTERNALDATE); the manifest is then fetched back over IMAP, so
its hashes are those of what the server serves for BODY[].
"""

import calendar
import hashlib
import os
import random
import sys
import time
from dataclasses import dataclass, field

from . import imapio, mailgen, mutf7, verify

__all__ = [
    "FolderSpec",
    "Planned",
    "SeedResult",
    "DEFAULT_TREE",
    "corpus_dir",
    "load_corpus",
    "plan_messages",
    "create_folders",
    "append_messages",
    "seed_user",
]


# Corpus messages get internal dates from here to the end of 2025.
CORPUS_FIRST_DATE = calendar.timegm((1998, 1, 1, 0, 0, 0))


@dataclass(frozen=True)
class FolderSpec:
    """A folder as path components below the namespace prefix ("INBOX" is INBOX)."""

    path: tuple
    special_use: str = None
    receives_mail: bool = True


# The default tree. Parents that are not listed ("Ärger", "Archive/..." has a listed
# parent) stay implicit: Dovecot lists them \Noselect. "Dotted.Name" holds the
# Maildir++ on-disk separator and a Courier server's delimiter; "Slash/Name" holds
# "/", which a server whose delimiter is "/" cannot store in a name (Dovecot splits
# it into a hierarchy), so on such a server it is left out and noted, and on a
# "." server it is created (listescape stores it as "\2f" on disk).
DEFAULT_TREE = (
    FolderSpec(("INBOX",)),
    FolderSpec(("Sent",), "\\Sent"),
    FolderSpec(("Drafts",), "\\Drafts"),
    FolderSpec(("Trash",), "\\Trash"),
    FolderSpec(("Junk",), "\\Junk"),
    FolderSpec(("Archive",), "\\Archive"),
    FolderSpec(("Archive", "2019")),
    FolderSpec(("Archive", "2020")),
    FolderSpec(("Ärger", "Überfällig")),
    FolderSpec(("日本語",)),
    FolderSpec(("Projects",)),
    FolderSpec(("Projects", "Q1 Planning")),
    FolderSpec(("Projects", "Q1 Planning", "Deep Nest")),
    FolderSpec(("R&D",)),
    FolderSpec(("R&D", "Tom & Jerry")),
    FolderSpec(("Dotted.Name",)),
    FolderSpec(("Slash/Name",)),
    FolderSpec(("Empty Folder",), receives_mail=False),
)


@dataclass
class Planned:
    """One message to seed."""

    folder: tuple  # FolderSpec.path
    data: bytes
    internaldate: int
    flags: tuple
    origin: str  # "edge/...", "gen/...", "corpus/<file>"
    uid: int = None  # set after APPEND


@dataclass
class SeedResult:
    manifest: verify.Manifest
    planned: list
    folders: dict  # FolderSpec.path -> full UTF-8 name on the server (created or existing)
    corpus_used: bool
    corpus_status: str
    notes: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    seconds: float = 0.0

    def count(self, origin_prefix=""):
        return sum(1 for p in self.planned if p.origin.startswith(origin_prefix))


def corpus_dir():
    """GODWIT_CORPUS, else <repo>/../shared/corpus (the repo is two levels above this file)."""
    env = os.environ.get("GODWIT_CORPUS")
    if env:
        return env
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.normpath(os.path.join(repo, "..", "shared", "corpus"))


def load_corpus(path=None, limit=None):
    """[(file name, bytes)] of every *.eml in the corpus, sorted by name; None if absent."""
    path = path or corpus_dir()
    if not os.path.isdir(path):
        return None
    names = sorted(n for n in os.listdir(path) if n.endswith(".eml"))
    if limit is not None:
        names = names[:limit]
    out = []
    for name in names:
        with open(os.path.join(path, name), "rb") as f:
            out.append((name, f.read()))
    return out


def _server_name(spec_path, delimiter, prefix):
    if spec_path == ("INBOX",):
        return "INBOX"
    return prefix + delimiter.join(spec_path)


def plan_messages(tree=DEFAULT_TREE, edge=True, generated=60, corpus=None, seed=1):
    """Decide folder, flags and date of every message, deterministically from @seed.

    Edge cases go to INBOX; generated and corpus messages are spread over the
    folders that receive mail. @corpus: list of (name, bytes) or None.
    """
    rng = random.Random("plan-%s" % seed)
    targets = [f.path for f in tree if f.receives_mail]
    planned = []
    if edge:
        for m in mailgen.edge_cases(seed):
            planned.append(Planned(("INBOX",), m.data, m.internaldate, m.flags, m.name))
    for m in mailgen.generate(generated, seed=seed):
        planned.append(Planned(rng.choice(targets), m.data, m.internaldate, m.flags, m.name))
    if corpus:
        dates = mailgen.date_spread(len(corpus), rng, first=CORPUS_FIRST_DATE)
        for (name, data), date in zip(corpus, dates):
            flags = mailgen.pick_flags(rng)
            planned.append(Planned(rng.choice(targets), data, date, flags, "corpus/" + name))
    return planned


def _delimiter_and_prefix(client):
    folders = imapio.list_folders(client, "%")
    inbox = next((f for f in folders if f.name.upper() == "INBOX"), None)
    delimiter = (inbox.delimiter if inbox else None) or next(
        (f.delimiter for f in folders if f.delimiter), "/")
    typ, data = client.namespace()
    prefix = ""
    if typ == "OK" and data and data[0]:
        text = data[0].decode("utf-8", "replace")
        if text.startswith('(("'):
            prefix = text[3:].split('"', 1)[0]
    return delimiter, prefix


def create_folders(client, tree=DEFAULT_TREE, notes=None):
    """CREATE the tree's folders (existing ones are fine). Returns path -> server name.

    A component containing the server's delimiter cannot be created; it is left
    out and a note says so (seed_user puts its messages into INBOX).
    """
    delimiter, prefix = _delimiter_and_prefix(client)
    existing = {f.name for f in imapio.list_folders(client)}
    created = {}
    for spec in tree:
        if spec.path != ("INBOX",) and any(delimiter in part for part in spec.path):
            if notes is not None:
                notes.append("folder %r left out: a name containing the server's hierarchy "
                             "delimiter %r cannot exist there (its messages go to INBOX)"
                             % ("/".join(spec.path), delimiter))
            continue
        name = _server_name(spec.path, delimiter, prefix)
        if name not in existing:
            typ, data = client.create(imapio.quote(mutf7.encode(name)))
            if typ != "OK":
                raise imapio.ImapError("CREATE %r failed: %r" % (name, data))
        created[spec.path] = name
    return created


def append_messages(client, folder, messages):
    """APPEND mailgen.GenMessage-like objects (data, internaldate, flags) to @folder (UTF-8).

    Returns their UIDs, in order.
    """
    raw = mutf7.encode(folder)
    results = imapio.append_many(client, [(raw, m.flags, m.internaldate, m.data) for m in messages])
    return [uid for _validity, uid in results]


def seed_user(dovecot, user, tree=DEFAULT_TREE, edge=True, generated=60, corpus="auto",
              corpus_limit=None, seed=1, out=sys.stdout):
    """Create @tree for @user, APPEND the planned messages, fetch the manifest back.

    corpus: "auto" (use it when present, say so when not), True (required:
    missing corpus raises), False (leave it out), or a list of (name, bytes).
    """
    began = time.monotonic()
    notes = []
    corpus_messages, corpus_status = _resolve_corpus(corpus, corpus_limit)
    if out:
        out.write("corpus: %s\n" % corpus_status)
    client = dovecot.imap(user)
    try:
        folders = create_folders(client, tree, notes)
        planned = plan_messages(tree, edge, generated, corpus_messages, seed)
        for p in planned:
            if p.folder not in folders:
                p.folder = ("INBOX",)  # its folder could not be created: keep the message
        by_folder = {}
        for p in planned:
            by_folder.setdefault(p.folder, []).append(p)
        for path, items in by_folder.items():
            uids = append_messages(client, folders[path], items)
            for p, uid in zip(items, uids):
                p.uid = uid
        manifest = verify.read_server(client)
    finally:
        try:
            client.logout()
        except Exception:
            pass
    problems = _check_fetched(planned, folders, manifest, dovecot.mail_save_crlf)
    problems += manifest.stray
    for path, name in folders.items():
        if name not in manifest:
            problems.append("folder %r created but not listed" % name)
    result = SeedResult(manifest, planned, folders, corpus_messages is not None, corpus_status,
                        notes, problems, time.monotonic() - began)
    if out:
        for note in notes:
            out.write("seed: %s\n" % note)
        out.write("seed: %s for %s in %.2f s\n" % (manifest.summary(), user, result.seconds))
    return result


def _resolve_corpus(corpus, limit):
    if corpus is False:
        return None, "not requested"
    if isinstance(corpus, list):
        return corpus, "%d messages given" % len(corpus)
    path = corpus_dir()
    messages = load_corpus(path, limit)
    if messages is None:
        if corpus is True:
            raise FileNotFoundError("corpus required but %s not found (set GODWIT_CORPUS)" % path)
        return None, "skipped, %s not found" % _display_path(path)
    return messages, "%d messages from %s" % (len(messages), _display_path(path))


def _display_path(path):
    repo_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if path.startswith(repo_parent + os.sep):
        return os.path.join("..", os.path.relpath(path, repo_parent))
    return path


def _check_fetched(planned, folders, manifest, mail_save_crlf):
    """The server must serve what was appended (modulo its known normalisation)."""
    problems = []
    by_uid = {(name, m["uid"]): m for name, msgs in manifest.items() for m in msgs}
    for p in planned:
        name = folders[p.folder]
        entry = by_uid.get((name, p.uid))
        if entry is None:
            problems.append("%s: uid %s not found in %r" % (p.origin, p.uid, name))
            continue
        entry["origin"] = p.origin
        want = hashlib.sha256(mailgen.served_by_dovecot(p.data, mail_save_crlf)).hexdigest()
        if entry["sha256"] != want:
            problems.append("%s: served bytes differ from the model (CRLF, NUL->0x80)" % p.origin)
        if entry["flags"] != imapio.normalise_flags(p.flags):
            problems.append("%s: flags %s, appended %s" % (p.origin, entry["flags"], p.flags))
        if entry["internaldate"] != p.internaldate:
            problems.append("%s: internaldate %d, appended %d" % (p.origin, entry["internaldate"], p.internaldate))
    return problems
