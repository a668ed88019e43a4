"""A report as a list of blocks, rendered to one self-contained HTML page and to Markdown.

Blocks: ``("h", level, text)``, ``("p", text)``, ``("note", text)``, ``("table", header, rows)``,
``("img", filename, png_bytes, alt)``, ``("md", markdown_text)`` (Markdown written by another tool, e.g. the
profiler's tables; converted to HTML by :func:`markdown_to_html`), ``("pre", text)``. In HTML, images are embedded
as base64 data URIs (no external files, no scripts); in Markdown they are linked files written beside it.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any

Block = tuple

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.note{background:#fff6e0;border-left:4px solid #f0b000;
padding:.5em 1em}pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
nav a{margin-right:1em}
"""


def _inline(text: str) -> str:
    """Escape, then ``code`` and **bold**."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _is_num(s: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d.,]+(e[-+]?\d+)?\s*(%|pJ|nJ|µJ|mJ|s|ms)?", s.strip(), re.IGNORECASE))


def _table_html(header: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{_inline(str(h))}</th>" for h in header)
    body = []
    for r in rows:
        cells = "".join(f'<td class="num">{_inline(str(c))}</td>' if _is_num(str(c)) else f"<td>{_inline(str(c))}</td>"
                        for c in r)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _split_row(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def markdown_to_html(md: str) -> str:
    """The Markdown subset other spikeseq tools write: headings, pipe tables, paragraphs, lists, code spans."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if not s:
            flush()
            i += 1
        elif s.startswith("#"):
            flush()
            level = min(len(s) - len(s.lstrip("#")) + 1, 6)  # nested under the report's own h2
            out.append(f"<h{level}>{_inline(s.lstrip('#').strip())}</h{level}>")
            i += 1
        elif s.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|?[\s:|-]+\|?", lines[i + 1].strip()):
            flush()
            header = _split_row(s)
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_split_row(lines[i]))
                i += 1
            out.append(_table_html(header, rows))
        elif s.startswith(("- ", "* ")):
            flush()
            items = []
            while i < len(lines) and lines[i].strip().startswith(("- ", "* ")):
                items.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        elif s.startswith("```"):
            flush()
            i += 1
            code = []
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            i += 1
            out.append(f"<pre>{html.escape(chr(10).join(code))}</pre>")
        else:
            para.append(s)
            i += 1
    flush()
    return "\n".join(out)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def to_html(title: str, blocks: list[Block]) -> str:
    """One self-contained HTML page (inline CSS, images as data URIs, a section nav) from ``blocks``."""
    nav = " ".join(f'<a href="#{_anchor(b[2])}">{html.escape(b[2])}</a>' for b in blocks if b[0] == "h" and b[1] == 2)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>", f"<nav>{nav}</nav>"]
    for b in blocks:
        kind = b[0]
        if kind == "h":
            parts.append(f'<h{b[1]} id="{_anchor(b[2])}">{html.escape(b[2])}</h{b[1]}>')
        elif kind == "p":
            parts.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "note":
            parts.append(f'<p class="note">{_inline(b[1])}</p>')
        elif kind == "table":
            parts.append(_table_html(b[1], b[2]))
        elif kind == "img":
            data = base64.b64encode(b[2]).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{html.escape(b[3])}">')
        elif kind == "md":
            parts.append(markdown_to_html(b[1]))
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(b[1])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_cell(c: Any) -> str:
    return str(c).replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, blocks: list[Block]) -> str:
    """Markdown text from ``blocks``; images are linked by file name (written beside it by the caller)."""
    parts = [f"# {title}", ""]
    for b in blocks:
        kind = b[0]
        if kind == "h":
            parts += ["#" * b[1] + " " + b[2], ""]
        elif kind == "p":
            parts += [b[1], ""]
        elif kind == "note":
            parts += [f"> {b[1]}", ""]
        elif kind == "table":
            parts.append("| " + " | ".join(_md_cell(h) for h in b[1]) + " |")
            parts.append("|" + "---|" * len(b[1]))
            parts += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b[2]]
            parts.append("")
        elif kind == "img":
            parts += [f"![{b[3]}]({b[1]})", ""]
        elif kind == "md":
            # demote the other tool's headings below the report's section heading
            parts += [re.sub(r"^(#+)", r"\1#", line) if line.startswith("#") else line for line in
                      b[1].splitlines()] + [""]
        elif kind == "pre":
            parts += ["```", b[1], "```", ""]
    return "\n".join(parts)
