"""How sizes, times and listings look on the terminal: binary units (KiB, MiB: sizes of
files are powers of two, as `ls -h` and `du -h` count them), times in the local time zone
with their offset, `ls --long` in aligned columns, and the progress bar's speed column."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.progress import ProgressColumn, Task
from rich.text import Text

from objectstore_s3.store import ObjectStat

__all__ = ["BinarySpeedColumn", "human_size", "long_lines", "when"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: float) -> str:
    """`size` bytes in binary units: 512 B, 1.5 KiB, 20.0 MiB."""
    unit = 0
    while abs(size) >= 1024 and unit < len(_UNITS) - 1:
        size /= 1024
        unit += 1
    return f"{size:.0f} B" if unit == 0 else f"{size:.1f} {_UNITS[unit]}"


def when(moment: datetime | None) -> str:
    """A time in the local time zone, with its UTC offset (`2026-01-02 10:00:00 +0100`);
    `(pending)` for a save not uploaded yet."""
    if moment is None:
        return "(pending)"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def long_lines(stats: Sequence[ObjectStat], *, human: bool) -> list[str]:
    """`ls --long`: size, time, ETag and key, each column as wide as its widest entry."""
    rows = [
        (
            human_size(stat.size) if human else str(stat.size),
            when(stat.last_modified),
            (stat.etag or "").strip('"'),
            stat.key,
        )
        for stat in stats
    ]
    if not rows:
        return []
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return [
        f"{size:>{widths[0]}}  {moment:<{widths[1]}}  {etag:<{widths[2]}}  {key}"
        for size, moment, etag, key in rows
    ]


class BinarySpeedColumn(ProgressColumn):
    """A transfer's speed in binary units (rich's own column counts in decimal ones)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "?" if speed is None else f"{human_size(speed)}/s"
        return Text(shown, style="progress.data.speed")
