"""Durations as people write them in scenario files: `90s`, `25m`, `2h28m`, `1.5h`, `600ms`.

Scenario timelines come from incident reports ("11:20 to 14:30", "2 h 28 min"),
so offsets and lengths are written the way those reports say them; a bare number
means seconds. Everything inside the program is a float of seconds.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["Duration", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+$")
# Every rejection names the accepted forms: the user is looking at YAML, not at this module.
_FORMS = "use seconds (90) or text like '600ms', '90s', '25m', '2h28m', '1d'"


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"2h28m"`...; raises ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration: {_FORMS}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _WHOLE.match(value):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    else:
        raise ValueError(f"{value!r} is not a duration: {_FORMS}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be finite and ≥ 0, got {value!r}: {_FORMS}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact text form: 8880 → `2h28m`, 90 → `1m30s`, 0.25 → `250ms`."""
    if seconds < 1 and seconds > 0:
        return f"{seconds * 1000:g}ms"
    out = []
    rest = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count = int(rest // size)
        if count:
            out.append(f"{count}{unit}")
            rest -= count * size
    if rest or not out:
        out.append(f"{rest:g}s")
    return "".join(out)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: seconds, written as a number or as `2h28m`."""
