"""The runbook as tests read it: its headings, and whether a check's text points into it."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parent.parent / "docs" / "runbook.md"
# How the product names a runbook section: ``docs/runbook.md, section `<name>```.
SECTION_REFERENCE = re.compile(r"docs/runbook\.md, section `([^`]+)`")


@cache
def runbook_headings() -> frozenset[str]:
    """What a reference may name, per heading of docs/runbook.md (outside code blocks): the
    heading's text, and its first code span (``### `orphaned_orders` (ERROR)`` is
    ``orphaned_orders``)."""
    names: set[str] = set()
    fenced = False
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
        if match is None:
            continue
        text = match.group(1)
        names.add(text)
        code = re.match(r"^`([^`]+)`", text)
        if code:
            names.add(code.group(1))
    return frozenset(names)


def sections_named(text: str) -> list[str]:
    return SECTION_REFERENCE.findall(text)


def assert_says_what_to_do(text: str | None, check: str) -> None:
    """A failing check's text: what failed, what to do, and the check's own runbook section,
    which must be a heading of the runbook."""
    assert text, f"{check}: no result text"
    assert "What to do:" in text, f"{check}: says nothing to do: {text}"
    named = sections_named(text)
    assert check in named, f"{check}: names no runbook section of its own: {text}"
    missing = [name for name in named if name not in runbook_headings()]
    assert not missing, f"{check}: docs/runbook.md has no heading {missing}"
