"""Results of the cases, the table, the ratios and the issue's targets."""

from . import measure, tools

__all__ = ["Result", "render", "as_json"]

MIB = 1024 * 1024


class Result:
    def __init__(self, case, unavailable=None):
        self.case = case
        self.unavailable = unavailable
        self.error = None
        self.samples = []
        self.verdicts = []

    def add(self, sample, verdict):
        self.samples.append(sample)
        self.verdicts.append(verdict)

    @property
    def measured(self):
        return not self.unavailable and not self.error and bool(self.samples)

    @property
    def wrong(self):
        return bool(self.error) or any(not v.ok for v in self.verdicts)

    @property
    def wall(self):
        return measure.median([s.wall for s in self.samples])

    @property
    def cpu(self):
        return measure.median([s.cpu for s in self.samples])

    @property
    def idle_pct(self):
        shares = [s.machine_idle for s in self.samples if s.machine_idle is not None]
        return 100 * measure.median(shares) if shares else None

    @property
    def rss_mib(self):
        return max(s.rss_kib for s in self.samples) / 1024 if self.samples else None

    @property
    def rss_median_mib(self):
        return measure.median([s.rss_kib for s in self.samples]) / 1024 if self.samples else None

    @property
    def messages(self):
        return self.case.source.count()

    @property
    def bytes(self):
        return self.case.source.total_bytes()

    @property
    def connections(self):
        if isinstance(self.case, tools.LimitCase):
            return self.case.connections
        used = self.case.measured_connections
        return max(used) if used else self.case.connections

    @property
    def moves_data(self):
        return not isinstance(self.case, tools.GodwitRerunCase)

    def verdict_text(self):
        if self.unavailable:
            return self.unavailable
        if self.error:
            return "WRONG: " + self.error.splitlines()[0]
        bad = [v for v in self.verdicts if not v.ok]
        if bad:
            return "WRONG (%d of %d runs): %s" % (len(bad), len(self.verdicts), bad[0].text)
        texts = sorted({v.text for v in self.verdicts})
        return " / ".join(texts)


def _find(results, pred):
    return next((r for r in results if r.measured and pred(r)), None)


def _ratio(ref, row):
    """Speed of @row relative to @ref on the same work: ref wall / row wall."""
    if not ref or not row.measured or not row.case.ratios or not row.moves_data or ref is row:
        return None
    if row.wrong or (ref.wrong and isinstance(ref.case, tools.LimitCase)):
        return None  # a fast wrong run wins nothing; a wrong yardstick measures nothing
    # A reference tool that altered mail is still the speed to beat: its row says how.
    return ref.wall / row.wall if row.wall else None


def _limit_for(results, row, store=False, sync=False, sha256=False, batch=False):
    return _find(results, lambda r: isinstance(r.case, tools.LimitCase) and r.case.store == store
                 and r.case.sync == sync and r.case.sha256 == sha256
                 and bool(r.case.batch) == batch
                 and not r.case.append and r.case.tls == row.case.tls
                 and r.case.connections == row.connections and r.case.user == row.case.user)


def _store_for(results, row):
    """The limit that stores as durably as @row does: with sync if it fsyncs."""
    return _limit_for(results, row, store=True, sync=getattr(row.case, "fsync", False))


def _mbsync_for(results, row):
    return _find(results, lambda r: r.case.tool == "mbsync" and not r.case.fsync
                 and r.case.tls == row.case.tls and r.case.user == row.case.user)


def _offlineimap_for(results, row):
    return _find(results, lambda r: r.case.tool == "offlineimap" and r.case.tls == row.case.tls
                 and r.case.user == row.case.user)


def _imapsync_for(results, row):
    if not (isinstance(row.case, tools.GodwitImapSinkCase) or
            (isinstance(row.case, tools.LimitCase) and row.case.append)):
        return None  # imapsync copies IMAP -> IMAP: only these rows do that work
    return _find(results, lambda r: r.case.tool == "imapsync" and r.case.tls == row.case.tls
                 and r.case.user == row.case.user)


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


COLUMNS = (("case", 34, "<"), ("msgs", 6, ">"), ("MB", 7, ">"), ("wall s", 7, ">"),
           ("msgs/s", 7, ">"), ("MB/s", 6, ">"), ("RSS MiB", 7, ">"), ("CPU s", 6, ">"),
           ("idle %", 6, ">"), ("conns", 5, ">"), ("vs limit", 8, ">"), ("vs store", 8, ">"),
           ("vs mbsync", 9, ">"), ("vs offlineimap", 14, ">"), ("vs imapsync", 11, ">"),
           ("runs", 4, ">"), ("verified", 0, "<"))


def _row_cells(results, r):
    if not r.measured:
        return [r.case.label] + ["-"] * (len(COLUMNS) - 2) + [r.verdict_text()]
    wall = r.wall
    rate = r.moves_data and wall and not r.wrong  # no rate for a run that did not do the work
    is_limit = isinstance(r.case, tools.LimitCase)
    ratios = [None if is_limit else _ratio(_limit_for(results, r), r),
              None if is_limit else _ratio(_store_for(results, r), r),
              None if r.case.tool == "mbsync" else _ratio(_mbsync_for(results, r), r),
              None if r.case.tool == "offlineimap" else _ratio(_offlineimap_for(results, r), r),
              None if r.case.tool == "imapsync" else _ratio(_imapsync_for(results, r), r)]
    return [r.case.label, str(r.messages), "%.1f" % (r.bytes / 1e6), "%.2f" % wall,
            _fmt(r.messages / wall if rate else None, ".0f"),
            _fmt(r.bytes / 1e6 / wall if rate else None, ".1f"), "%.1f" % r.rss_mib,
            "%.2f" % r.cpu, _fmt(r.idle_pct, ".0f"), str(r.connections)] + [
            _fmt(x, ".2f") for x in ratios] + [str(len(r.samples)), r.verdict_text()]


def _table(results):
    # The case column as wide as its longest label.
    label_width = max([COLUMNS[0][1]] + [len(r.case.label) for r in results])
    columns = ((COLUMNS[0][0], label_width, COLUMNS[0][2]),) + COLUMNS[1:]
    lines = []
    header = "  ".join(format(name, "%s%d" % (align, width)) for name, width, align in columns)
    lines.append(header.rstrip())
    lines.append("-" * len(header))
    for r in results:
        cells = _row_cells(results, r)
        lines.append("  ".join(format(c, "%s%d" % (align, width))
                               for c, (_n, width, align) in zip(cells, columns)).rstrip())
    return lines


def _godwit(results, label):
    """The row of that label if it ran and was verified (targets count only correct runs)."""
    return _find(results, lambda r: r.case.label == label and not r.wrong)


def targets(results):
    """[(target, measured text, verdict)] for the acceptance list of issue 5."""
    out = []

    def ratio_target(label, ref_of, ref_name, at_least):
        row = _godwit(results, label)
        ref = ref_of(results, row) if row else None
        value = _ratio(ref, row) if row and ref else None
        what = "%s >= %.2f x %s" % (label, at_least, ref_name)
        if value is None:
            out.append((what, "not measured", "n/a"))
            return
        ok = value >= at_least and not row.wrong
        text = "%.2f x (%.2f s vs %.2f s)" % (value, row.wall, ref.wall)
        # What the minimal reader-writer reaches against the same yardstick in the same
        # run (for a row with fsync, also the minimal durable one): godwit does all of
        # its work and more, on cores the server shares. A target that even the floor
        # misses is shown impossible in this run.
        if ref_of in (_limit_for, _mbsync_for):
            floors = [("limit+store", False, False, False)] + (
                [("limit+store+sync", True, False, False), ("+sha256", True, True, False),
                 ("+batches", True, True, True)]
                if row.case.fsync else [("+sha256", False, True, False)])
            for name, sync, sha256, batch in floors:
                store = _limit_for(results, row, store=True, sync=sync, sha256=sha256,
                                   batch=batch)
                store_ratio = _ratio(ref, store) if store else None
                text += "; %s: %s" % (name, "%.2f x" % store_ratio if store_ratio is not None
                                      else "not measured")
        out.append((what, text, "PASS" if ok else "FAIL"))

    for tls in ("plain", "TLS"):
        ratio_target("godwit 1 conn, %s, fsync" % tls, _limit_for, "limit (same conns)", 0.8)
        ratio_target("godwit 1 conn, %s, no fsync" % tls, _limit_for, "limit (same conns)", 0.9)
        ratio_target("godwit default, %s, fsync" % tls, _mbsync_for, "mbsync FSync no", 3.0)
        ratio_target("godwit default, %s, fsync" % tls, _limit_for, "limit (same conns)", 0.8)
    sink = _godwit(results, "godwit -> Dovecot (imap sink)")
    imapsync = next((r for r in results if r.case.tool == "imapsync"), None)
    what = "imap sink >= 10 x imapsync"
    if sink and imapsync and imapsync.measured:
        value = _ratio(imapsync, sink)
        text = "%.2f x (%.2f s vs %.2f s)" % (value, sink.wall, imapsync.wall)
        # What the fastest possible feeding of the same Dovecot reaches, in this run.
        floors = [r for r in results if r.measured and not r.wrong and
                  isinstance(r.case, tools.LimitCase) and r.case.append]
        for floor in floors:
            text += "; limit+append %d conn: %.2f x" % (floor.case.connections,
                                                          _ratio(imapsync, floor))
        out.append((what, text, "PASS" if value >= 10 else "FAIL"))
    else:
        missing = [r.verdict_text() for r in (sink, imapsync) if r and not r.measured]
        out.append((what, "not measured: " + ("; ".join(missing) or "row not run"), "n/a"))
    godwit_rows = [r for r in results if r.measured and not r.wrong and r.case.tool == "godwit"
                   and r.case.user == "alice"]
    if godwit_rows:
        peak = max(godwit_rows, key=lambda r: r.rss_mib)
        out.append(("peak RSS <= 64 MiB (%d msgs)" % peak.messages,
                    "%.1f MiB (%s)" % (peak.rss_mib, peak.case.label),
                    "PASS" if peak.rss_mib <= 64 else "FAIL"))
    sized = sorted((r for r in results if r.measured and not r.wrong
                    and r.case.label.endswith(" msgs, RSS")), key=lambda r: r.messages)
    if len(sized) >= 2:
        # Medians of each size's runs, as for every other row: one run's peak varies by
        # about a mebibyte (PROFILE.md, seventh pass, section 6).
        low, high = sized[0], sized[-1]
        growth = high.rss_median_mib - low.rss_median_mib
        per_message = growth * 1024 * 1024 / (high.messages - low.messages)
        text = ", ".join("%d msgs %.1f MiB" % (r.messages, r.rss_median_mib) for r in sized)
        text += "; %+.1f MiB, %.0f bytes a message" % (growth, per_message)
        if len(sized) >= 3:  # the largest two: past what the largest messages add
            a, b = sized[-2], sized[-1]
            text += " (%.0f from %d)" % ((b.rss_median_mib - a.rss_median_mib) * 1024 * 1024 /
                                         (b.messages - a.messages), a.messages)
        text += "; medians of %d run(s) each" % min(len(r.samples) for r in sized)
        out.append(("peak RSS not growing with mailbox size (<= 1 MiB)", text,
                    "PASS" if growth <= 1 else "FAIL"))
    rerun = _godwit(results, "godwit re-run, no change")
    if rerun:
        # Dovecot offers CONDSTORE, so the stricter bound applies; the imap source does not
        # skip folders by MODSEQ (that is the dovecot source's, ROADMAP.md), so it is met
        # without.
        out.append(("no-change re-run <= 0.5 s (CONDSTORE offered)",
                    "%.2f s for %d msgs, without using MODSEQ" % (rerun.wall, rerun.messages),
                    "PASS" if rerun.wall <= 0.5 and not rerun.wrong else "FAIL"))
    small = _find(results, lambda r: r.case.tool == "godwit" and r.case.user == "small"
                  and not r.wrong)
    big = _godwit(results, "godwit default, plain, fsync")
    if small and big:
        share = big.wall * small.messages / big.messages
        # The two mailboxes differ in bytes per message too (the small one holds one of the
        # few huge messages): the share by bytes, and what the minimal reader-writer does
        # on the same two mailboxes, say how much of the ratio is the work itself.
        by_bytes = big.wall * small.bytes / big.bytes
        text = "%.2f s vs share %.2f s (%.2f x; by bytes %.2f x)" % (
            small.wall, share, small.wall / share, small.wall / by_bytes)
        def plain_store(user):  # limit+store, 1 plain connection, no sync
            return _find(results, lambda r: isinstance(r.case, tools.LimitCase)
                         and r.case.store and not r.case.sync and not r.case.tls
                         and r.case.user == user and r.case.connections == 1 and not r.wrong)
        store_small, store_big = plain_store("small"), plain_store("alice")
        if store_small and store_big:
            floor = store_small.wall / (store_big.wall * small.messages / store_big.messages)
            text += "; limit+store on the same: %.2f x" % floor
        out.append(("%d-msg run <= 1.2 x its share of the %d-msg run" % (small.messages,
                                                                        big.messages),
                    text, "PASS" if small.wall <= 1.2 * share else "FAIL"))
    return out


def render(header, results):
    lines = [""]
    for key, value in header.items():
        if isinstance(value, dict):
            value = "; ".join("%s: %s" % kv for kv in value.items())
        lines.append("%-14s %s" % (key + ":", value))
    lines.append("")
    lines += _table(results)
    lines += ["", "Ratios are speed ratios on the same work: other wall / this wall (2.00 = twice "
              "as fast). vs limit: the limit row with the same TLS and connection count; vs store: "
              "the limit+store row likewise (limit that also writes every message as a file), "
              "for a row with fsync the limit+store+sync row (and makes them durable; "
              "+sha256: and hashes each, as godwit's state needs). idle %: how idle the "
              "whole machine was during the run (all cores; near 0: the cores were the limit). "
              "vs mbsync: mbsync with FSync no and the same TLS. vs imapsync: the imap sink and "
              "limit+append rows against imapsync (all IMAP -> IMAP). conns: IMAP logins counted "
              "in Dovecot's log (limit: its setting). A WRONG row gets no rates and no ratios of its own.", "",
              "Targets (issue 5)%s:" % (", set for loopback; this run adds a round trip"
                                        if "round trip" in header else "")]
    for what, value, verdict in targets(results):
        lines.append("  %-4s %-58s %s" % (verdict, what, value))
    return "\n".join(lines) + "\n"


def as_json(header, results):
    rows = []
    for r in results:
        rows.append({
            "case": r.case.label, "tool": r.case.tool, "user": r.case.user, "tls": r.case.tls,
            "available": not r.unavailable, "unavailable": r.unavailable, "error": r.error,
            "messages": r.messages, "bytes": r.bytes,
            "wall": [s.wall for s in r.samples], "cpu": [s.cpu for s in r.samples],
            "rss_kib": [s.rss_kib for s in r.samples],
            "machine_idle": [s.machine_idle for s in r.samples],
            "exit": [s.returncode for s in r.samples],
            "connections": r.connections if r.samples else None,
            "verdicts": [{"ok": v.ok, "text": v.text, "details": v.details[:20]}
                         for v in r.verdicts],
            "verified_ok": r.measured and not r.wrong, "verdict": r.verdict_text(),
        })
    return {"header": header, "rows": rows,
            "targets": [{"target": t, "measured": m, "verdict": v} for t, m, v in targets(results)]}
