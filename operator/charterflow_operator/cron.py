"""The longest wait between two runs of a cron schedule: how old the last successful backup may
be before an alert says backups stopped (children/monitoring.py).

Only what the CronJob controller accepts is read: five fields (numbers, ``*``, ranges, steps,
lists, month and day names) or a macro. Day-of-month and day-of-week are OR-ed when both are
restricted, as cron does.
"""

from __future__ import annotations

import datetime as dt
import itertools
from functools import lru_cache

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (low, high, names) per field: minute, hour, day of month, month, day of week.
FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, MONTHS), (0, 7, DAYS))


def _value(text: str, names: tuple[str, ...] | list[str], low: int) -> int:
    lowered = text.lower()
    if lowered in names:
        return list(names).index(lowered) + (1 if low == 1 else 0)
    return int(text)


def _field(text: str, low: int, high: int, names: tuple[str, ...] | list[str]) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = _value(first, names, low), _value(last, names, low)
        else:
            start = end = _value(base, names, low)
            if step:
                end = high
        values.update(range(start, end + 1, int(step) if step else 1))
    if not values or min(values) < low or max(values) > high:
        raise ValueError(f"{text!r} is out of {low}-{high}")
    return values


@lru_cache(maxsize=64)
def longest_gap(schedule: str) -> dt.timedelta:
    """The longest time between two consecutive runs over four years (leap years included)."""
    text = MACROS.get(schedule.strip().lower(), schedule)
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"{schedule!r}: five fields or a macro")
    minutes, hours, doms, months, dows = (
        _field(part, low, high, names)
        for part, (low, high, names) in zip(parts, FIELDS, strict=True)
    )
    dows = {d % 7 for d in dows}
    dom_any, dow_any = parts[2] in ("*", "?"), parts[4] in ("*", "?")
    times = sorted(dt.timedelta(hours=h, minutes=m) for h in hours for m in minutes)
    run_days: list[dt.date] = []
    day = dt.date(2024, 1, 1)
    for _ in range(4 * 366):
        cron_dow = (day.weekday() + 1) % 7  # cron: 0 = Sunday
        if dom_any or dow_any:
            on = (day.day in doms) and (cron_dow in dows)
        else:
            on = (day.day in doms) or (cron_dow in dows)
        if day.month in months and on:
            run_days.append(day)
        day += dt.timedelta(days=1)
    if not run_days or (len(run_days) == 1 and len(times) == 1):
        raise ValueError(f"{schedule!r} runs less than twice in four years")
    # Within a run day the runs are the same; between two run days, last run to first run.
    within = max((b - a for a, b in itertools.pairwise(times)), default=dt.timedelta(0))
    between = max(
        (
            (later - earlier) - (times[-1] - times[0])
            for earlier, later in itertools.pairwise(run_days)
        ),
        default=dt.timedelta(0),
    )
    return max(within, between)
