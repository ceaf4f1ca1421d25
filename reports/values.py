"""Plain values in a run and how they read: which count as finite numbers, and numbers, times and error text
as the report, the leaderboard and the search's progress line print them.

:func:`finite` is the one rule for "is this a usable metric value": a real number (Python or NumPy) that is
neither NaN nor infinite. A ``bool`` is not one: ``True`` is an ``int`` to Python, but a score, an accuracy
or a duration of ``True`` is a bug upstream, and ranking or plotting it as 1.0 would hide that bug.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Any

import numpy as np
import pandas as pd

MISSING = "—"  # what a table cell shows for a value that is not there


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite real number (Python or NumPy scalar); False for bools, strings, None, NaN."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) as one space: messages quote library errors,
    and each message must stay one line."""
    return " ".join(str(text).split())


def duration(seconds: Any, *, compact: bool = False) -> str:
    """A duration for a reader: "8.25 s", "42.0 s", "3 min 20 s", "2.5 h"; :data:`MISSING` if not finite.

    ``compact`` is the narrow form of the search's progress line, whole seconds and no spaces: "42s", "3m20s",
    "2h05m".
    """
    if not finite(seconds):
        return MISSING
    if compact:
        whole = int(seconds)
        if whole < 60:
            return f"{whole}s"
        if whole < 3600:
            return f"{whole // 60}m{whole % 60:02d}s"
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    seconds = float(seconds)
    if seconds < 10:
        return f"{seconds:.3g} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes:.0f} min {rest:.0f} s"
    return f"{minutes / 60:.1f} h"


def number(value: Any, digits: int = 4) -> str:
    return f"{float(value):.{digits}g}" if finite(value) else MISSING


def percent(value: Any) -> str:
    """A fraction (accuracy) as a percentage."""
    return f"{100 * float(value):.1f}%" if finite(value) else MISSING


def percent_points(value: Any) -> str:
    """A difference of two fractions, signed, in percentage points."""
    return f"{100 * float(value):+.1f} pp" if finite(value) else MISSING


def utc_time(stamp: Any) -> str:
    """A Unix time stamp as a UTC date and time."""
    if not finite(stamp):
        return MISSING
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(stamp)))


def value_text(value: Any) -> str:
    """A hyperparameter or count as written in a config: whole floats without ".0", bools in lower case."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e6 else f"{float(value):.4g}"
    return str(value)


def short_id(node: Any) -> str:
    """The first 8 characters of a Ray node id, enough to tell the nodes of one cluster apart."""
    return str(node)[:8] if node else "?"
