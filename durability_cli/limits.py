"""Limits on the resources one command may take: the memory budget and the thread count.

The memory budget bounds what a command lets its input make it allocate: the text of a file after
decompression, a model file, and the arrays a forecast or a backtest would build. Work whose
estimate is over the budget is refused before it starts, with the estimate and the fix, instead of
running the machine out of memory. The budget is half the machine's memory unless
``durability --max-memory SIZE`` or the DURABILITY_MAX_MEMORY environment variable (which the
processes of ``train --nproc`` read) sets it.
"""

from __future__ import annotations

import math
import os
import re

from durability_cli.errors import InputError, check_numbers

DEFAULT_FRACTION = 0.5  # of the machine's physical memory: leaves room for the rest of the system
ENV = "DURABILITY_MAX_MEMORY"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:e(\d+))?\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
MIN_BUDGET = 16 << 20  # below this not even the interpreter's own arrays fit


_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def machine_memory() -> int:
    """Physical memory in bytes (8 GiB when the system does not say), or the container's limit
    (cgroup v2 or v1) when that is lower."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    for path in _CGROUP_LIMITS:
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" = no limit
            memory = min(memory, int(text))
    return memory


def parse_size(text: str, flag: str = "--max-memory") -> int:
    """'2G', '512M', '1.5GiB', '1e9' (bytes) -> bytes."""
    m = _SIZE.match(str(text))
    if not m:
        raise InputError(f"{flag} {text!r}: not a size; write e.g. 2G, 512M or 1e9 (bytes)")
    try:
        value = float(m.group(1)) * 10.0 ** int(m.group(2) or 0) * _UNITS[m.group(3).lower()]
    except (OverflowError, ValueError):  # 1e400, or thousands of digits: past any float
        value = math.inf
    if not MIN_BUDGET <= value <= 1 << 60:
        raise InputError(f"{flag} {text}: must be between 16M and 1E (exabyte); give e.g. 2G")
    return int(value)


_budget: int | None = None


def set_budget(text: str | None) -> None:
    """Set the budget for this process; None = $DURABILITY_MAX_MEMORY, else the default."""
    global _budget
    _budget = None if text is None else parse_size(text)


def budget() -> int:
    """The memory budget in bytes."""
    if _budget is not None:
        return _budget
    if os.environ.get(ENV):
        return parse_size(os.environ[ENV], ENV)
    return int(machine_memory() * DEFAULT_FRACTION)


def size_text(n: float) -> str:
    if n >= 1e6 * (1 << 40):
        return "1,000,000+ TB"
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def check_memory(need: float, what: str, fix: str) -> None:
    """Refuse work estimated at ``need`` bytes when it is over the budget: one line with the
    estimate, the budget and ``fix``."""
    have = budget()
    if need > have:
        raise InputError(
            f"{what} needs about {size_text(need)} of memory, more than the budget of {size_text(have)}; "
            f"{fix}, or raise the budget with durability --max-memory SIZE"
        )


def max_threads() -> int:
    """More threads than this only adds contention (and torch crashes far beyond it)."""
    return max(64, 4 * (os.cpu_count() or 1))


def check_threads(threads: int) -> int:
    """``threads`` when it is between 1 and :func:`max_threads`; else one line, exit 2."""
    check_numbers(whole={"threads": threads})
    top = max_threads()
    if not 1 <= threads <= top:
        raise InputError(f"`threads` must be between 1 and {top} (4 per CPU core), got {threads}")
    return threads
