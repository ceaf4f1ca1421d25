"""Blocks to a page: HTML (CSS inline, charts as inline SVG, no scripts or external resources) or Markdown
(the same tables; each chart replaced by its one-line summary).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from .blocks import Block, Chart, Charts, Code, Heading, Para, Table

CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #f4f5f7; color: #1d1f23; font: 14px/1.5 system-ui, -apple-system, "Segoe UI",
  Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 18px 28px 60px; background: #fff; }
h1 { font-size: 24px; margin: 8px 0 2px; }
h2 { font-size: 19px; margin: 34px 0 8px; padding-top: 8px; border-top: 2px solid #e4e6ea; }
h3 { font-size: 16px; margin: 22px 0 6px; } h4 { font-size: 14px; margin: 16px 0 4px; }
.meta { color: #666; margin: 0 0 10px; }
nav { background: #f7f8fa; border: 1px solid #e4e6ea; padding: 6px 12px; border-radius: 6px; }
nav a { margin-right: 12px; color: #2a5db0; text-decoration: none; white-space: nowrap; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
p.caption { color: #555; margin: 10px 0 0; font-style: italic; font-size: 13px; }
th, td { border: 1px solid #dde0e5; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; } tr.em td { background: #fff6d6; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
p.good { background: #eaf6ec; border-left: 4px solid #59a14f; padding: 8px 12px; font-size: 15px; }
p.warn { background: #fff1e0; border-left: 4px solid #f28e2b; padding: 8px 12px; }
p.note { background: #eef3fa; border-left: 4px solid #4e79a7; padding: 6px 12px; }
code { background: #f0f1f4; padding: 0 3px; border-radius: 3px; font-size: 12.5px; }
pre { background: #f7f8fa; border: 1px solid #e4e6ea; padding: 8px 12px; overflow-x: auto; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
svg.chart { border: 1px solid #e4e6ea; border-radius: 4px; background: #fff; max-width: 100%; height: auto; }
footer { color: #888; font-size: 12px; margin-top: 40px; }
"""

# Cells right-aligned in a table: one number as values.py prints it (plain, %, pp, a duration, an average).
_NUMERIC = re.compile(r"^[−+\-]?[\d.]+(e[+-]?\d+)?(%| pp| s| min \d+ s| h)?( \(\d+/\d+\))?\*?$|^—$")


def _inline_html(text: str) -> str:
    out = escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def render_html(title: str, blocks: Sequence[Block], generated: str) -> str:
    toc = [b for b in blocks if isinstance(b, Heading) and b.anchor and b.level == 2]
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>",
        f'<h1>{escape(title)}</h1><p class="meta">{escape(generated)}</p>',
    ]
    if len(toc) > 1:
        parts.append("<nav>" + "".join(f'<a href="#{escape(h.anchor)}">{escape(h.text)}</a>' for h in toc) + "</nav>")
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{escape(block.anchor)}"' if block.anchor else ""
            parts.append(f"<h{block.level}{anchor}>{escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            cls = f' class="{block.kind}"' if block.kind else ""
            parts.append(f"<p{cls}>{_inline_html(block.text)}</p>")
        elif isinstance(block, Table):
            parts.append(_html_table(block))
        elif isinstance(block, Chart):
            parts.append(f'<div class="charts"><figure style="margin:0">{block.svg}</figure></div>')
        elif isinstance(block, Charts):
            parts.append(
                '<div class="charts">'
                + "".join(f'<figure style="margin:0">{c.svg}</figure>' for c in block.charts)
                + "</div>"
            )
        elif isinstance(block, Code):
            parts.append(
                f"<details><summary>{escape(block.summary)}</summary><pre>{escape(block.text)}</pre></details>"
            )
    parts.append(f"<footer>{escape(generated)}. Self-contained: no scripts, no external resources.</footer>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _html_table(table: Table) -> str:
    caption = f'<p class="caption">{escape(table.caption)}</p>' if table.caption else ""
    rows = [
        f"{caption}<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.header) + "</tr></thead><tbody>"
    ]
    for i, row in enumerate(table.rows):
        cls = ' class="em"' if i in table.emphasis else ""
        cells = "".join(
            f'<td class="n">{_inline_html(c)}</td>'
            if j and table.numeric and _NUMERIC.match(c)
            else f"<td>{_inline_html(c)}</td>"
            for j, c in enumerate(row)
        )
        rows.append(f"<tr{cls}>{cells}</tr>")
    rows.append("</tbody></table>")
    return "".join(rows)


def _md_text(text: object) -> str:
    """Names in a run (methods, paths, trial ids) are user data: Markdown viewers render raw HTML, so no ``<``
    may open a tag (``>`` is left alone: task names such as A->W read as they are)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;")


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, blocks: Sequence[Block], generated: str) -> str:
    lines = [f"# {_md_text(title)}", "", f"_{generated}_", ""]
    for block in blocks:
        if isinstance(block, Heading):
            lines += [f"{'#' * block.level} {_md_text(block.text)}", ""]
        elif isinstance(block, Para):
            prefix = {"warn": "> **Note:** ", "note": "> ", "good": "> "}.get(block.kind, "")
            lines += [prefix + _md_text(block.text), ""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"_{_md_text(block.caption)}_", ""]
            lines.append("| " + " | ".join(_md_cell(h) or " " for h in block.header) + " |")
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            for i, row in enumerate(block.rows):
                cells = [f"**{_md_cell(c)}**" if i in block.emphasis and c and c != "—" else _md_cell(c) for c in row]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        elif isinstance(block, Chart):
            lines += [f"- chart: {_md_text(block.summary)}", ""]
        elif isinstance(block, Charts):
            lines += [f"- chart: {_md_text(c.summary)}" for c in block.charts] + [""]
        elif isinstance(block, Code):
            lines += [
                f"<details><summary>{_md_text(block.summary)}</summary>",
                "",
                "```yaml",
                block.text,
                "```",
                "",
                "</details>",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"
