"""The code blocks of README.md and docs/*.rst, as test_doc_examples.py runs them."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.rst"))]

#: Languages whose blocks do not run, with the reason.
NOT_RUN = {
    "text": "output of a command, or a format",
    "literal": "output of a command, or a format",
    "yaml": "another program's configuration (Prometheus alert rules)",
    "json": "a format",
    "none": (
        "no language given: README.md's two buildbot.tac lines, the same as index.rst's "
        "Python block, which runs"
    ),
}


@attrs.frozen
class Block:
    """One code block: where it starts (the first line of its code) and what it says."""

    path: Path
    line: int
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def first_line(self) -> str:
        return self.code.strip().splitlines()[0].strip()


def blocks(path: Path) -> list[Block]:
    """The code blocks of a Markdown or reStructuredText file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = markdown_blocks(path, lines) if path.suffix == ".md" else rst_blocks(path, lines)
    return [block for block in found if block.code.strip()]


def markdown_blocks(path: Path, lines: list[str]) -> list[Block]:
    found, index = [], 0
    while index < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[index])
        if fence is None:
            index += 1
            continue
        end = index + 1
        while not lines[end].startswith("```"):
            end += 1
        code = "\n".join(lines[index + 1 : end])
        found.append(Block(path, index + 2, fence[1] or "none", code))
        index = end + 1
    return found


def rst_blocks(path: Path, lines: list[str]) -> list[Block]:
    """``.. code-block:: LANGUAGE`` directives, and literal blocks after ``::`` (as
    ``literal``: output and formats in these documents)."""
    found = []
    for index, line in enumerate(lines):
        directive = re.match(r"^\s*\.\. code-block::\s*(\S+)", line)
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if directive is None and not literal:
            continue
        indent = len(line) - len(line.lstrip())
        start = index + 1
        while start < len(lines) and (
            not lines[start].strip() or lines[start].lstrip().startswith(":")
        ):
            start += 1  # the blank line and the directive's options
        end = start
        while end < len(lines) and (
            not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
        ):
            end += 1
        code = textwrap.dedent("\n".join(lines[start:end])).strip("\n")
        language = directive[1] if directive is not None else "literal"
        found.append(Block(path, start + 1, language, code))
    return found
