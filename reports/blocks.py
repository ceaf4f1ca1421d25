"""The report's content blocks: what a section says, with no HTML or Markdown in it. The renderers turn a list
of blocks into a page; a chart carries its inline SVG and the one-line summary Markdown prints instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Heading:
    """A section heading; with an ``anchor`` it is a link target (and, at level 2, a table-of-contents entry)."""

    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    text: str  # **bold** and `code` are the only markup
    kind: str = ""  # "" | note | warn | good


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    emphasis: set[int] = field(default_factory=set)  # row indices to highlight
    numeric: bool = True  # right-align cells that hold a number (not for key/value tables)


@dataclass
class Chart:
    svg: str
    summary: str  # what the Markdown report prints instead


@dataclass
class Charts:
    """Charts side by side (wrapping on a narrow page)."""

    charts: list[Chart]


@dataclass
class Code:
    """Preformatted text, folded away under ``summary``."""

    text: str
    summary: str


Block = Heading | Para | Table | Chart | Charts | Code
