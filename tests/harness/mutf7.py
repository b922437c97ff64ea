"""Modified UTF-7 (RFC 3501 section 5.1.3) for IMAP folder names.

Printable US-ASCII (0x20..0x7e) stands for itself except "&", which is
written "&-". Every other run of characters is UTF-16BE, base64 with ","
instead of "/", no padding, between "&" and "-".
"""

import base64

__all__ = ["encode", "decode", "MUTF7Error"]


class MUTF7Error(ValueError):
    """A name that is not valid modified UTF-7."""


def _is_direct(ch):
    return 0x20 <= ord(ch) <= 0x7E


def _encode_run(run):
    raw = run.encode("utf-16-be")
    b64 = base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
    return "&" + b64 + "-"


def encode(name):
    """UTF-8 text (str) -> modified UTF-7 (str, ASCII only)."""
    out = []
    run = []
    for ch in name:
        if _is_direct(ch):
            if run:
                out.append(_encode_run("".join(run)))
                run = []
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append(_encode_run("".join(run)))
    return "".join(out)


def _decode_run(b64, whole):
    if not b64:
        raise MUTF7Error("empty shift sequence in %r" % whole)
    padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
        text = raw.decode("utf-16-be")
    except (ValueError, UnicodeDecodeError) as exc:
        raise MUTF7Error("bad shift sequence &%s- in %r: %s" % (b64, whole, exc)) from None
    if encode(text) != "&" + b64 + "-":
        # RFC 3501 requires the shortest form and forbids encoding printable ASCII.
        raise MUTF7Error("non-canonical shift sequence &%s- in %r" % (b64, whole))
    return text


def decode(name):
    """Modified UTF-7 (str or bytes) -> UTF-8 text (str). Raises MUTF7Error."""
    if isinstance(name, bytes):
        name = name.decode("ascii")
    out = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch != "&":
            if not _is_direct(ch):
                raise MUTF7Error("character %r not allowed in %r" % (ch, name))
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise MUTF7Error("unterminated shift sequence in %r" % name)
        if end == i + 1:
            out.append("&")
        else:
            out.append(_decode_run(name[i + 1 : end], name))
        i = end + 1
    return "".join(out)
