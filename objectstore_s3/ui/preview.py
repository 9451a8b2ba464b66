"""What a value looks like in the console, from at most its first MiB.

`preview(key, head, size)` takes the first bytes of a value (the console reads at most
`PREVIEW_BYTES` of it) and decides by content and name: an image (PNG, JPEG, GIF) shown
inline; SVG and HTML shown as their source text, never rendered; JSON pretty-printed and
foldable; XML pretty-printed (parsed with defusedxml); CSV and Parquet as a table of the
first rows with column types (pandas and pyarrow when installed); other text as text;
anything else as a hex view of the first bytes. Every result is data for a template that
escapes it: nothing here produces markup.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IMAGE_TYPES", "PREVIEW_BYTES", "Preview", "image_type", "preview"]

PREVIEW_BYTES = 1024 * 1024  # the most a preview reads of a value
HEX_BYTES = 4096
TABLE_ROWS = 20
TREE_NODES = 3000  # a bigger JSON document is shown as text only (the tree is one element each)
TREE_DEPTH = 24
IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
IMAGE_TYPES.update({b"GIF87a": "image/gif", b"GIF89a": "image/gif"})
MARKUP_NAMES = (".svg", ".svgz", ".html", ".htm", ".xhtml", ".shtml")
MARKUP_STARTS = ("<svg", "<!doctype html", "<html")


@dataclass
class Preview:
    """One value's preview: `kind` says which of the other fields are set."""

    kind: str  # empty | image | markup | json | xml | table | text | hex
    note: str = ""
    text: str = ""
    tree: Any = None  # the parsed JSON value, when small enough to fold
    columns: list[tuple[str, str]] = field(default_factory=list)  # name, type
    rows: list[list[str]] = field(default_factory=list)
    hex_lines: list[str] = field(default_factory=list)
    image: str = ""  # the image's media type


def image_type(head: bytes) -> str | None:
    """The media type of a PNG, JPEG or GIF by its first bytes (never by its name)."""
    for magic, media in IMAGE_TYPES.items():
        if head.startswith(magic):
            return media
    return None


def preview(key: str, head: bytes, size: int) -> Preview:
    """The preview of a value of `size` bytes whose first bytes are `head`."""
    cut = len(head) < size
    lower = key.lower()
    if size == 0:
        return Preview("empty", note="The value is empty (0 bytes).")
    media = image_type(head)
    if media is not None:
        if cut:
            return Preview("hex", note=_too_big("image"), hex_lines=hex_view(head))
        return Preview("image", image=media)
    if head.startswith(b"PAR1") or lower.endswith(".parquet"):
        return _parquet(head, cut)
    text = _text(head, cut)
    if text is None:
        return Preview("hex", note=_cut_note(cut, size), hex_lines=hex_view(head))
    start = text.lstrip()[:1024].lower()
    if lower.endswith(MARKUP_NAMES) or start.startswith(MARKUP_STARTS) or "<svg" in start:
        note = "SVG and HTML values are shown as source text, never rendered: download to view."
        return Preview("markup", note=note, text=text)
    if lower.endswith(".json") or start.startswith(("{", "[")):
        found = _json(text, cut)
        if found is not None:
            return found
    if lower.endswith(".xml") or start.startswith("<"):
        found = _xml(head, cut)
        if found is not None:
            return found
    if lower.endswith((".csv", ".tsv")):
        return _csv(text, cut, "\t" if lower.endswith(".tsv") else ",")
    return Preview("text", note=_cut_note(cut, size), text=text)


def _too_big(what: str) -> str:
    return (
        f"This {what} is larger than the {PREVIEW_BYTES // 1024 // 1024} MiB a preview reads: "
        "its first bytes are shown; download it to see it whole."
    )


def _cut_note(cut: bool, size: int) -> str:
    return f"The first {PREVIEW_BYTES:,} of {size:,} bytes." if cut else ""


def _text(head: bytes, cut: bool) -> str | None:
    """The bytes as UTF-8 text (a character cut at the end of the range dropped), or None
    for binary data."""
    for trim in range(4 if cut else 1):
        try:
            text = head[: len(head) - trim].decode("utf-8")
        except UnicodeDecodeError:
            continue
        controls = sum(1 for char in text[:65536] if ord(char) < 32 and char not in "\t\n\r\f")
        return None if "\x00" in text or controls * 100 > len(text[:65536]) else text
    return None


def _json(text: str, cut: bool) -> Preview | None:
    if cut:
        return None  # a JSON document cut at 1 MiB does not parse: shown as text
    try:
        value = json.loads(text)
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None
    tree = value if _small_tree(value) else None
    note = "" if tree is not None else "Too large or too deep to fold: shown pretty-printed."
    return Preview("json", note=note, text=pretty, tree=tree)


def _small_tree(value: Any) -> bool:
    """At most TREE_NODES values and TREE_DEPTH levels (counted without recursion)."""
    stack, seen = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > TREE_NODES or depth > TREE_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return True


def _xml(head: bytes, cut: bool) -> Preview | None:
    if cut:
        return None
    from defusedxml import minidom

    try:
        document = minidom.parseString(head)
        pretty = document.toprettyxml(indent="  ")
    except Exception:  # not XML after all, or refused by defusedxml (entities): text
        return None
    lines = [line for line in pretty.splitlines() if line.strip()]
    return Preview("xml", text="\n".join(lines))


def _csv(text: str, cut: bool, delimiter: str) -> Preview:
    if cut:
        text = text[: text.rfind("\n") + 1]  # the last row may be cut
    try:
        import pandas
    except ImportError:
        return _csv_plain(text, delimiter)
    try:
        frame = pandas.read_csv(io.StringIO(text), sep=delimiter, nrows=TABLE_ROWS)
    except Exception as exc:  # a malformed file: its text, and why
        return Preview("text", note=f"Not a table pandas can read ({exc}).", text=text)
    columns = [(str(name), str(kind)) for name, kind in frame.dtypes.items()]
    rows = [[str(cell) for cell in row] for row in frame.itertuples(index=False)]
    return Preview(
        "table", note=f"The first {len(rows)} rows (pandas).", columns=columns, rows=rows
    )


def _csv_plain(text: str, delimiter: str) -> Preview:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    table = [row for _, row in zip(range(TABLE_ROWS + 1), reader, strict=False)]
    if not table:
        return Preview("text", text=text)
    header, rows = table[0], table[1:]
    columns = [
        (name, _guess([row[i] for row in rows if i < len(row)])) for i, name in enumerate(header)
    ]
    note = "pandas is not installed: column types are guessed (pip install pandas)."
    return Preview("table", note=note, columns=columns, rows=rows)


def _guess(cells: list[str]) -> str:
    for kind, parse in (("int", int), ("float", float)):
        try:
            for cell in cells:
                parse(cell)
        except ValueError:
            continue
        return kind
    return "text"


def _parquet(head: bytes, cut: bool) -> Preview:
    if cut:
        note = (
            f"Parquet keeps its column index at the end of the value; values over "
            f"{PREVIEW_BYTES // 1024 // 1024} MiB are not read whole for a preview: download it."
        )
        return Preview("hex", note=note, hex_lines=hex_view(head))
    try:
        import pyarrow.parquet as parquet  # type: ignore[import-untyped]
    except ImportError:
        note = "pyarrow is not installed: Parquet is shown as bytes (pip install pyarrow)."
        return Preview("hex", note=note, hex_lines=hex_view(head))
    try:
        batches = parquet.ParquetFile(io.BytesIO(head)).iter_batches(batch_size=TABLE_ROWS)
        batch = next(batches, None)
    except Exception as exc:  # damaged: its bytes, and why
        return Preview(
            "hex", note=f"Not a Parquet file pyarrow can read ({exc}).", hex_lines=hex_view(head)
        )
    if batch is None:
        return Preview("table", note="A Parquet file with no rows.")
    columns = [(field_.name, str(field_.type)) for field_ in batch.schema]
    rows = [[str(cell) for cell in row.values()] for row in batch.to_pylist()]
    return Preview(
        "table", note=f"The first {len(rows)} rows (pyarrow).", columns=columns, rows=rows
    )


def hex_view(head: bytes) -> list[str]:
    """The first HEX_BYTES bytes as `offset  hex  ascii` lines of 16 bytes."""
    lines = []
    for offset in range(0, min(len(head), HEX_BYTES), 16):
        chunk = head[offset : offset + 16]
        hexed = " ".join(f"{byte:02x}" for byte in chunk)
        shown = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:08x}  {hexed:<47}  {shown}")
    return lines
