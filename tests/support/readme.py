"""The README's code blocks, section by section, so a test runs what the README tells a reader."""

from __future__ import annotations

import re

from tests.support.paths import PROJECT

README = PROJECT / "README.md"
_HEADING = re.compile(r"(#+) (.*)")


def section(heading: str, *, subsections: bool = False) -> list[str]:
    """The lines under the heading `heading` (any level), up to the next heading of its level
    or above; with `subsections`, its subsections too, else up to the first one."""
    lines = README.read_text(encoding="utf-8").splitlines()
    fenced = False
    start = level = None
    for number, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else _HEADING.fullmatch(line)
        if match is None:
            continue
        depth = len(match.group(1))
        if start is None:
            if match.group(2) == heading:
                start, level = number + 1, depth
        elif depth <= level or not subsections:
            return lines[start:number]
    if start is None:
        raise AssertionError(f"README.md has no heading {heading!r}")
    return lines[start:]


def blocks(heading: str, language: str, *, subsections: bool = False) -> list[str]:
    """The text of each fenced ```language block of the section, in order."""
    found, current = [], None
    for line in section(heading, subsections=subsections):
        if current is None and line == f"```{language}":
            current = []
        elif current is not None and line == "```":
            found.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return found


def commands(heading: str, *, subsections: bool = False) -> list[str]:
    """Every command line of the section's ```sh blocks (one command a line), in order."""
    return [
        line.strip()
        for block in blocks(heading, "sh", subsections=subsections)
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
