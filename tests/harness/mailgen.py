"""Deterministic test messages: the same seed always gives the same bytes.

Every message carries the internal date (epoch seconds, UTC) and the flags a
test should seed it with. Edge cases cover what migrations get wrong: no or
duplicate Message-IDs, bare LF, long lines, raw 8-bit and UTF-8 headers, RFC
2047 words, a NUL byte, header-only and incomplete-header messages, mbox
"From " lines, base64 attachments and messages of an exact size.

Dovecot serves stored messages with CRLF line ends (a bare LF becomes CRLF,
a bare CR stays) and NUL as 0x80; served_by_dovecot() predicts that, and
"exact" in the tests always means "equal to what the server serves".
"""

import base64
import calendar
import hashlib
import random
import re
import time
from dataclasses import dataclass, field

__all__ = [
    "GenMessage",
    "edge_cases",
    "generate",
    "message_of_size",
    "multipart_with_attachments",
    "served_by_dovecot",
    "date_spread",
    "pick_flags",
    "SYSTEM_FLAGS",
    "KEYWORDS",
]

SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Draft")
KEYWORDS = ("$Forwarded", "$label1", "$MDNSent", "Godwit_Custom")

FIRST_DATE = calendar.timegm((2004, 1, 1, 0, 0, 0))
LAST_DATE = calendar.timegm((2025, 12, 31, 23, 59, 59))

_WORDS = (
    "migration mailbox folder message archive quarterly report meeting notes budget invoice "
    "schedule review draft project release backup server client network storage update "
    "status summary question answer follow-up reminder agenda minutes travel contract"
).split()
_NAMES = ("Alice Example", "Bob Sample", "Carol Test", "Dave Demo", "Erin Probe", "Frank Mock")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class GenMessage:
    """One generated message and how to seed it."""

    name: str  # stable identifier, e.g. "edge/no-message-id" or "gen/0007"
    data: bytes  # the bytes to APPEND
    internaldate: int  # epoch seconds (UTC)
    flags: tuple = field(default_factory=tuple)

    @property
    def sha256(self):
        return hashlib.sha256(self.data).hexdigest()


def served_by_dovecot(data, mail_save_crlf=False):
    """The bytes Dovecot 2.3 serves for BODY[] after APPENDing @data.

    Measured: with mail_save_crlf = no, saving turns each CRLF into LF (so
    "\r\r\n" keeps one CR) and drops a CR at the very end; with yes, the bytes
    are saved as they are. Serving turns every LF not preceded by CR into CRLF
    and every NUL into 0x80.
    """
    stored = data
    if not mail_save_crlf:
        stored = data.replace(b"\r\n", b"\n")
        if stored.endswith(b"\r"):
            stored = stored[:-1]
    return re.sub(rb"(?<!\r)\n", b"\r\n", stored).replace(b"\0", b"\x80")


def rfc5322_date(epoch):
    y, mo, d, h, mi, s, wd = _gmtime(epoch)
    return "%s, %02d %s %04d %02d:%02d:%02d +0000" % (_DAYS[wd], d, _MONTHS[mo - 1], y, h, mi, s)


def _gmtime(epoch):
    t = time.gmtime(epoch)
    return t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_wday


def date_spread(count, rng, first=FIRST_DATE, last=LAST_DATE):
    """@count distinct internal dates spread over [first, last], in random order."""
    if count <= 0:
        return []
    step = (last - first) // count
    dates = [first + i * step + rng.randrange(max(step, 1)) for i in range(count)]
    rng.shuffle(dates)
    return dates


def pick_flags(rng):
    """A random, plausible flag set: \\Seen often, others and keywords now and then."""
    flags = [f for f in SYSTEM_FLAGS if rng.random() < (0.6 if f == "\\Seen" else 0.15)]
    flags += [k for k in KEYWORDS if rng.random() < 0.12]
    return tuple(flags)


_pick_flags = pick_flags  # older spelling, still used by some tests


def _sentence(rng, words):
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _address(name):
    return "%s <%s@example.org>" % (name, name.split()[0].lower())


def _headers(rng, date, subject, message_id=True, extra=()):
    sender, rcpt = rng.sample(_NAMES, 2)
    lines = [
        "From: " + _address(sender),
        "To: " + _address(rcpt),
        "Subject: " + subject,
        "Date: " + rfc5322_date(date),
    ]
    if message_id is True:
        lines.append("Message-ID: <%016x.%d@gen.godwit.test>" % (rng.getrandbits(64), date))
    elif message_id:
        lines.append("Message-ID: " + message_id)
    lines += list(extra)
    return lines


def _text_message(rng, date, subject, body_lines, eol=b"\r\n", message_id=True, extra=()):
    head = [line.encode("utf-8") for line in _headers(rng, date, subject, message_id, extra)]
    head.append(b"MIME-Version: 1.0")
    head.append(b"Content-Type: text/plain; charset=utf-8")
    body = [line if isinstance(line, bytes) else line.encode("utf-8") for line in body_lines]
    return eol.join(head) + eol + eol + eol.join(body) + eol


def _plain_body(rng, lines):
    return [_sentence(rng, rng.randint(4, 14)) for _ in range(lines)]


def multipart_with_attachments(sizes, seed=1, date=None, subject=None, eol=b"\r\n"):
    """A multipart/mixed message with one text part and base64 attachments of @sizes bytes."""
    rng = random.Random("attach-%s-%r" % (seed, tuple(sizes)))
    date = date if date is not None else rng.randrange(FIRST_DATE, LAST_DATE)
    boundary = "=_godwit_%016x" % rng.getrandbits(64)
    subject = subject or "Attachments %s" % ",".join(str(s) for s in sizes)
    lines = [line.encode("utf-8") for line in _headers(rng, date, subject)]
    lines += [
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="' + boundary.encode() + b'"',
        b"",
        b"This is a multi-part message in MIME format.",
        b"--" + boundary.encode(),
        b"Content-Type: text/plain; charset=utf-8",
        b"",
    ]
    lines += [s.encode() for s in _plain_body(rng, 3)]
    for index, size in enumerate(sizes):
        payload = rng.randbytes(size)
        encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n").rstrip(b"\r\n")
        lines += [
            b"--" + boundary.encode(),
            b"Content-Type: application/octet-stream",
            b"Content-Transfer-Encoding: base64",
            b'Content-Disposition: attachment; filename="blob-%d-%d.bin"' % (index, size),
            b"",
        ]
        lines += encoded.split(b"\r\n")
    lines += [b"--" + boundary.encode() + b"--", b""]
    return eol.join(lines)


def message_of_size(size, seed=1, date=None, subject=None):
    """A CRLF-only, NUL-free message of exactly @size bytes (served unchanged by Dovecot).

    The body is padded with text lines of at most 76 characters. Sizes below
    ~200 bytes cannot hold the headers and raise ValueError.
    """
    rng = random.Random("size-%s-%d" % (seed, size))
    date = date if date is not None else rng.randrange(FIRST_DATE, LAST_DATE)
    subject = subject or "Exactly %d bytes" % size
    head = b"\r\n".join(line.encode() for line in _headers(rng, date, subject)) + b"\r\n\r\n"
    room = size - len(head)
    if room < 2:
        raise ValueError("message_of_size: %d bytes is too small (headers need %d)" % (size, len(head) + 2))
    body = []
    while room > 0:
        # Each line costs its text plus CRLF; the last one takes what is left.
        text_len = min(76, room - 2)
        if room - (text_len + 2) in (1,):
            text_len -= 1  # never leave a single byte that cannot hold a CRLF
        text = (_sentence(rng, 12) * 3)[:text_len].ljust(text_len, "x")
        body.append(text.encode() + b"\r\n")
        room -= text_len + 2
    data = head + b"".join(body)
    assert len(data) == size, (len(data), size)
    return data


def _edge(name, data, date, flags=()):
    return GenMessage(name="edge/" + name, data=data, internaldate=date, flags=tuple(flags))


def edge_cases(seed=1):
    """The edge-case messages, in a fixed order with fixed names."""
    rng = random.Random("edge-%s" % seed)
    dates = iter(date_spread(40, rng))
    out = []

    out.append(_edge("no-message-id", _text_message(
        rng, next(dates), "No Message-ID here", _plain_body(rng, 3), message_id=False), next(dates),
        ("\\Seen",)))
    dup_id = "<duplicate.%d@gen.godwit.test>" % rng.getrandbits(32)
    for variant in (1, 2):
        out.append(_edge("duplicate-message-id-%d" % variant, _text_message(
            rng, next(dates), "Same Message-ID, body %d" % variant,
            ["Variant %d of a message that shares its Message-ID." % variant] + _plain_body(rng, 2),
            message_id=dup_id), next(dates)))
    out.append(_edge("bare-lf", _text_message(
        rng, next(dates), "Bare LF line ends", _plain_body(rng, 4), eol=b"\n"), next(dates),
        ("\\Seen", "$Forwarded")))
    out.append(_edge("crlf", _text_message(
        rng, next(dates), "CRLF line ends", _plain_body(rng, 4)), next(dates), ("\\Answered",)))
    mixed = _text_message(rng, next(dates), "Mixed line ends", _plain_body(rng, 4))
    out.append(_edge("mixed-eol-bare-cr", mixed.replace(b".\r\n", b".\n", 1) + b"bare CR\rinside\r\n",
                     next(dates)))
    long_line = ("long-" + "0123456789" * 600)[:5000]
    out.append(_edge("long-line-5000", _text_message(
        rng, next(dates), "A 5000-byte line", ["Before.", long_line, "After."],
        extra=("X-Long-Header: " + "h" * 1200,)), next(dates), ("\\Flagged",)))
    out.append(_edge("utf8-headers-rfc6532", _text_message(
        rng, next(dates), "Grüße aus Köln — 日本語のテスト", ["Raw UTF-8 in the header block."],
        extra=("X-Note: naïve café",)), next(dates), ("$label1",)))
    latin1 = _text_message(rng, next(dates), "Latin-1 raw", ["Raw 8-bit header byte."],
                           extra=("X-Latin1: caf\xe9",))
    out.append(_edge("8bit-latin1-header", latin1.replace("caf\xe9".encode("utf-8"), b"caf\xe9"),
                     next(dates)))
    out.append(_edge("rfc2047-subject", _text_message(
        rng, next(dates), "=?UTF-8?B?w4RyZ2VyIMO8YmVyIMOEbmRlcnVuZ2Vu?= =?ISO-8859-1?Q?caf=E9?=",
        ["Encoded words in Subject."]), next(dates), ("\\Seen", "Godwit_Custom")))
    nul = _text_message(rng, next(dates), "A NUL byte", ["before", "NUL->\0<-NUL", "after"])
    out.append(_edge("nul-byte", nul, next(dates)))
    head_only = b"\r\n".join(h.encode() for h in _headers(rng, next(dates), "Header, empty body"))
    out.append(_edge("header-no-body", head_only + b"\r\n\r\n", next(dates), ("\\Draft",)))
    incomplete = b"\r\n".join(h.encode() for h in _headers(rng, next(dates), "Incomplete header"))
    out.append(_edge("incomplete-header", incomplete + b"\r\nX-Truncated: yes", next(dates)))
    from_line = b"From alice@example.org Mon Jan  5 10:00:00 2009\n" + _text_message(
        rng, next(dates), "Starts with an mbox From line", _plain_body(rng, 2), eol=b"\n")
    out.append(_edge("mbox-from-line", from_line, next(dates)))
    out.append(_edge("multipart-attachments", multipart_with_attachments(
        (1000, 20000, 150000), seed=seed), next(dates), ("\\Seen", "$Forwarded")))
    out.append(_edge("exact-size-4096", message_of_size(4096, seed=seed), next(dates)))
    return out


def generate(count, seed=1, first=FIRST_DATE, last=LAST_DATE, attachment_every=7):
    """@count ordinary messages with dates spread over [first, last] and mixed flags.

    Every @attachment_every-th one is multipart with a small base64 attachment;
    every 11th uses bare LF line ends.
    """
    rng = random.Random("gen-%s" % seed)
    dates = date_spread(count, rng, first, last)
    out = []
    for i, date in enumerate(dates):
        subject = "%s %s #%d" % (rng.choice(_WORDS).capitalize(), rng.choice(_WORDS), i)
        if attachment_every and i % attachment_every == attachment_every - 1:
            data = multipart_with_attachments((rng.randint(200, 6000),), seed="%s-%d" % (seed, i),
                                              date=date, subject=subject)
        else:
            eol = b"\n" if i % 11 == 10 else b"\r\n"
            data = _text_message(rng, date, subject, _plain_body(rng, rng.randint(1, 12)), eol=eol)
        out.append(GenMessage(name="gen/%04d" % i, data=data, internaldate=date,
                              flags=pick_flags(rng)))
    return out
