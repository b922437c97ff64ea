"""One timed run of a command: wall time, CPU time and peak RSS from GNU time (-v), and
how idle the whole machine was meanwhile (/proc/stat)."""

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass

__all__ = ["Sample", "GNU_TIME", "run_timed", "median"]

GNU_TIME = "/usr/bin/time"


@dataclass
class Sample:
    wall: float  # seconds, monotonic clock around the child
    cpu: float  # user + system seconds of the child and its children
    rss_kib: int  # peak resident set size of the largest process (GNU time's "Maximum RSS")
    returncode: int
    stdout: str
    stderr: str
    # Share of all cores' time the machine was idle during the run (the servers' processes
    # and the kernel's writeback included): near 0, the cores were what limited it.
    # None where /proc/stat cannot be read.
    machine_idle: float = None


_FIELDS = {
    "user": re.compile(r"^\s*User time \(seconds\): ([\d.]+)$", re.M),
    "system": re.compile(r"^\s*System time \(seconds\): ([\d.]+)$", re.M),
    "rss": re.compile(r"^\s*Maximum resident set size \(kbytes\): (\d+)$", re.M),
    "status": re.compile(r"^\s*Exit status: (\d+)$", re.M),
}


def _parse_time_report(text):
    values = {}
    for key, pattern in _FIELDS.items():
        match = pattern.search(text)
        if not match:
            raise RuntimeError("GNU time report lacks %r:\n%s" % (key, text[-2000:]))
        values[key] = float(match.group(1))
    return values


def _cpu_jiffies():
    """(idle, total) clock ticks of all cores since boot, or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            # user nice system idle iowait irq softirq steal (guest time is inside user)
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (ticks[3] + ticks[4], sum(ticks)) if len(ticks) == 8 else None


def _idle_share(before, after):
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def run_timed(argv, env=None, cwd=None, timeout=7200):
    """Run @argv under `/usr/bin/time -v`; the report goes to a file, not the child's stderr."""
    fd, report = tempfile.mkstemp(prefix="gwbench-time-")
    os.close(fd)
    try:
        ticks = _cpu_jiffies()
        began = time.monotonic()
        proc = subprocess.run([GNU_TIME, "-v", "-o", report] + list(argv), env=env, cwd=cwd,
                              capture_output=True, text=True, errors="replace", timeout=timeout)
        wall = time.monotonic() - began
        idle = _idle_share(ticks, _cpu_jiffies())
        with open(report, encoding="utf-8", errors="replace") as f:
            values = _parse_time_report(f.read())
    finally:
        os.unlink(report)
    return Sample(wall, values["user"] + values["system"], int(values["rss"]), proc.returncode,
                  proc.stdout, proc.stderr, idle)


def median(values):
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
