"""What a count as of a date cannot know, in words a reader sees beside the count.

A report as of an earlier date counts each trial's status and phase from the
stored version that was current on that date.  When the database holds only
later versions of a trial (the sample holds one 2026 version of most records),
its status on the date is not known: by default it is counted as "Not known
at <date>"; ``latest_status`` counts its latest known status instead.  Its
phase is taken from the later version all the same, because a registered
phase rarely changes (the report says how often it did where both versions
are stored).  These sentences go under every table and figure that shows a
status or a phase, and into the Methods.
"""

from __future__ import annotations

from typing import Any

from cartatlas.analysis.landscape import Landscape

#: Tables counting trials by status, and by phase among trials active on the date.
STATUS_TABLES = frozenset({"status_by_group"})
ACTIVE_TABLES = frozenset({"phase_by_group_active"})


def _n(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def as_of_caveat(landscape: Landscape, table: str) -> str:
    """The sentence under ``table`` (a name of ``AS_OF_TABLES``): how many of its trials use a later version."""
    facts: dict[str, Any] = landscape.facts["as_of"]
    counts = facts["tables"][table]
    date, total, later = facts["date"], counts["trials"], counts["later_version"]
    not_known = counts["status_not_known"]
    things = "registrations" if table == "focus_registry_phases" else "trials"
    if table in STATUS_TABLES:
        if not not_known:
            return f"The status of every one of these {_n(total, 'trial', 'trials')} is the one shown on {date}."
        if facts["latest_status"]:
            return (
                f"{not_known:,} of these {total:,} trials are counted by their latest known status, which may not "
                f"be their status on {date}: no stored version shows it on that date."
            )
        return (
            f"The status on {date} is known for {total - not_known:,} of these {total:,} trials; the other "
            f"{not_known:,} are counted as \u201c{facts['not_known_label']}\u201d because no stored version shows "
            "their status on that date (report option --latest-status counts their latest known status instead)."
        )
    if table in ACTIVE_TABLES:
        left_out = facts["status_not_known"]
        if facts["latest_status"]:
            if not not_known:
                return f"Every status here is the one shown on {date}."
            return (
                f"{not_known:,} of these {total:,} trials are counted as active by their latest known status, "
                f"which may not be their status on {date}; {later:,} take their phase from a version updated "
                "after that date."
            )
        if not left_out:
            return f"Active on {date}, as the version current on that date shows."
        return (
            f"Trials shown as active on {date} by the version current on that date; "
            f"{_n(left_out, 'trial', 'trials')} whose status on that date is not known "
            f"{'is' if left_out == 1 else 'are'} left out."
        )
    if not later:
        return f"Every phase here is the one registered on {date} ({total:,} {things})."
    return (
        f"{later:,} of these {total:,} {things} take their phase from a version updated after {date} "
        "(no version current on that date is stored; a registered phase rarely changes, see Methods)."
    )


def dates_caveat(landscape: Landscape) -> str:
    """How many counted trials have estimated dates that could fall on the other side of the as-of date."""
    notes = landscape.notes
    date = landscape.facts["as_of"]["date"]
    later, earlier = len(notes.get("dates_may_be_later", [])), len(notes.get("dates_may_be_earlier", []))
    undated = len(notes.get("undated_units", []))
    parts = []
    if later:
        has = _n(later, "counted trial has an estimated registration date", "counted trials have estimated dates")
        parts.append(f"{has} that could also fall after {date}")
    if earlier:
        are = _n(earlier, "trial is", "trials are")
        parts.append(f"{are} not counted, dated after {date} by an estimate that could also fall on or before it")
    if undated:
        verb = "is" if undated == 1 else "are"
        parts.append(f"{_n(undated, 'trial has', 'trials have')} no usable date at all and {verb} not counted")
    if not parts:
        return f"No estimated registration date could move a trial across {date}."
    return "; ".join(parts) + "."
