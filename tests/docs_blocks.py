"""The commands the docs mark as read-only, read from their Markdown.

The rule (docs/contributing.md, "Commands in the docs are tested"): a fenced ``bash`` block
after a line ``<!-- test: read-only -->`` (or ``<!-- test: read-only, exits N -->``), blank lines
between allowed, is run by the tests; a fenced ``text`` block right after it is its documented
output, every non-blank line of which must appear within a line of what the commands print
(a line ``...`` stands for lines left out, a trailing ``...`` for the rest of a line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKER = re.compile(r"<!-- test: read-only(?:, exits (?P<status>\d+))? -->")
ELISION = "..."


@dataclass(frozen=True)
class DocCommands:
    """One marked block: where it is, what it runs, how it must end and what it must print."""

    page: str
    line: int
    script: str
    exit_status: int
    output: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def collapse(line: str) -> str:
    """A line with its runs of white space made one space, so table padding never matters."""
    return " ".join(line.split())


def _fence(lines: list[str], start: int, info: str, where: str) -> tuple[list[str], int] | None:
    """The body of the fenced block with ``info`` at the first non-blank line from ``start``
    and the index after its closing fence; None when the next non-blank line opens no such block."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip() != f"```{info}":
        return None
    end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
    if end is None:
        raise ValueError(f"{where}: the ```{info} block is never closed")
    return lines[i + 1 : end], end + 1


def marked_commands(page: Path) -> list[DocCommands]:
    """Every marked block of one page; a marker that no ``bash`` block follows is an error."""
    name = page.relative_to(DOCS).as_posix()
    lines = page.read_text().splitlines()
    found = []
    for number, text in enumerate(lines, start=1):
        marker = MARKER.fullmatch(text.strip())
        if not marker:
            if text.strip().startswith("<!-- test:"):
                raise ValueError(f"{name}:{number}: unknown test marker {text.strip()!r}")
            continue
        where = f"{name}:{number}"
        script = _fence(lines, number, "bash", where)
        if script is None:
            raise ValueError(f"{where}: a read-only marker must be followed by a ```bash block")
        body, after = script
        if not any(line.strip() and not line.lstrip().startswith("#") for line in body):
            raise ValueError(f"{where}: the marked ```bash block runs nothing")
        output = _fence(lines, after, "text", where)
        expected = [collapse(line) for line in (output[0] if output else []) if line.strip()]
        found.append(
            DocCommands(
                page=name,
                line=number,
                script="\n".join(body) + "\n",
                exit_status=int(marker.group("status") or 0),
                output=tuple(line.removesuffix(ELISION).rstrip() for line in expected if line != ELISION),
            )
        )
    return found


def all_marked_commands() -> list[DocCommands]:
    """The marked blocks of every page under docs/, page by page."""
    return [command for page in sorted(DOCS.rglob("*.md")) for command in marked_commands(page)]
