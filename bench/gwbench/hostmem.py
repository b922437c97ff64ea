"""A VM's memory reclaim for its host, held off while the bench runs.

Why: on a virtual machine that gives memory back to its host, a row's speed
depended on which memory pages its writes happened to get, not on the tool.
Measured on the bench VM (PROFILE.md, eighth pass):

- DAMON (a kdamond with a `pageout` scheme) drops any page left unused for about
  a minute, page cache included: the source mail between rows, a destination
  just written.
- Free page reporting hands freed pages to the host. Writing into such a page
  again faults on the host: `dd` of 1 GB into the page cache took 0.64 s on
  reported pages against 0.25 s on pages the guest had kept.
- The same godwit run took 1.2 or 2.4 CPU-seconds, in streaks of whole rows;
  in the slow ones `copy_folio_from_iter_atomic` (write() copying into the page
  cache) had 17-39 % of the samples against 2-12 %.

So the bench switches the kdamonds off and makes freed pages wait for their
report as long as the kernel allows, for its run only: `restore` puts back
exactly what was changed, and the header says what that was. Kernels without
these knobs are left alone; `--no-hold-reclaim` leaves them alone too.
"""

import glob
import os

_KDAMONDS = "/sys/kernel/mm/damon/admin/kdamonds/*/state"
_REPORTING = "/sys/module/page_reporting/parameters"
# Free page reporting knobs of some VM kernels (not in mainline Linux): how long a
# freed page stays with the guest before it is reported (the kernel caps it; the
# first value it accepts wins) and how much may wait before reports start anyway.
_REPORTING_WAIT = ("min_free_ms", (3_600_000, 600_000, 300_000, 60_000))
_REPORTING_BACKLOG = ("max_waiting_mib", (1 << 20,))


def _read(path):
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def _write(path, value):
    with open(path, "w", encoding="ascii") as f:
        f.write(str(value))


class ReclaimHold:
    """What was changed, to be put back; `describe` is one line for the header."""

    def __init__(self):
        self.changes = []  # (path, old value, new value)
        self.problems = []
        self.restored = False

    def _set(self, path, candidates):
        try:
            old = _read(path)
        except OSError:
            return
        error = None
        for value in candidates:
            if str(value) == old:
                return
            try:
                _write(path, value)
            except OSError as exc:
                error = exc
                continue
            self.changes.append((path, old, str(value)))
            return
        self.problems.append("%s: %s" % (_short(path), error.strerror or error))

    def hold(self):
        for state in _running_kdamonds():
            self._set(state, ("off",))
        for name, candidates in (_REPORTING_WAIT, _REPORTING_BACKLOG):
            path = os.path.join(_REPORTING, name)
            if os.path.exists(path):
                self._set(path, candidates)
        return self

    def restore(self):
        if self.restored:
            return
        self.restored = True
        for path, old, _ in reversed(self.changes):
            try:
                _write(path, old)
            except OSError as exc:
                self.problems.append("could not restore %s to %s: %s" % (path, old, exc))

    def describe(self):
        if not self.changes and not self.problems:
            return "nothing to hold off (no kdamond on, no free page reporting knobs)"
        parts = ["%s %s -> %s" % (_short(path), old, new) for path, old, new in self.changes]
        text = ("held off for the run, restored at exit: " + ", ".join(parts) if parts
                else "not held off")
        if self.problems:
            text += "; not changed: " + "; ".join(self.problems)
        return text


def left_alone():
    """The header line for --no-hold-reclaim: what is running that rows may pay for."""
    active = [_short(state) for state in _running_kdamonds()]
    if os.path.exists(os.path.join(_REPORTING, "page_reporting_order")):
        active.append("free page reporting")
    if not active:
        return "none found"
    return ("left on (--no-hold-reclaim): %s; the same run may take twice the time "
            "(PROFILE.md)" % ", ".join(active))


def _running_kdamonds():
    running = []
    for state in sorted(glob.glob(_KDAMONDS)):
        try:
            if _read(state) == "on":
                running.append(state)
        except OSError:
            pass
    return running


def _short(path):
    if "/kdamonds/" in path:
        return "kdamond %s" % path.split("/kdamonds/")[1].split("/")[0]
    return os.path.basename(path)
