"""`objectstore-s3 demo`: the Object Store documentation, walked end to end and checked.

Two nodes share the configured store: a "backtest" node and a "research" node with
their own caches and local folders. Every step of the seed document runs and is checked;
the result is a table of steps with ✓/✗ (the DataFrame and plot sections are in
demo_frames.py). Keys live under `<project_id>/demo/` and are deleted at the end unless
`keep`.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from objectstore_s3.codecs import Compression
from objectstore_s3.server.seaweedfs import local_server_status
from objectstore_s3.settings import ObjectStoreSettings
from objectstore_s3.store import ObjectStore

from .demo_frames import dataframes, plotting

__all__ = ["Insight", "run"]

DATAFRAMES_HINT = "needs pandas, pyarrow, lxml and matplotlib: pip install 'objectstore-s3[all]'"


class Insight(BaseModel):
    """A LEAN-style insight, as the seed's live algorithm keeps them between deployments."""

    Symbol: str
    Type: str
    Direction: str
    Period: timedelta
    Magnitude: float | None = None
    GeneratedTimeUtc: datetime


@dataclasses.dataclass
class Step:
    name: str
    ok: bool
    detail: str


class Demo:
    """The demo's state: two nodes, the keys it made, and the steps' outcomes."""

    def __init__(self, settings: ObjectStoreSettings, chart: Path, scratch: Path) -> None:
        self.settings = settings
        self.chart = chart
        self.scratch = scratch
        self.backtest = ObjectStore(settings)
        self.research = ObjectStore(_second_node(settings, scratch / "research"))
        self.prefix = f"{self.backtest.ProjectId}/demo"
        self.made: set[str] = set()
        self.steps: list[Step] = []
        self.frame: Any = None

    def key(self, name: str) -> str:
        key = f"{self.prefix}/{name}"
        self.made.add(key)
        return key

    def step(self, name: str, action: Callable[[], str]) -> None:
        try:
            detail = action()
            self.steps.append(Step(name, True, detail))
        except Exception as exc:  # a failed step is reported in the table, not raised
            reason = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ImportError):
                reason = f"{reason} ({DATAFRAMES_HINT})"
            self.steps.append(Step(name, False, reason))

    # -- the seed's sections -----------------------------------------------------------------

    def data_types(self) -> None:
        store = self.backtest
        string_sample = "My string"
        bytes_sample = str.encode("My String")
        dict_sample = {"One": 1, "Two": 2, "Three": 3}

        def string() -> str:
            assert store.Save(self.key("string_key"), string_sample)
            assert store.Read(self.key("string_key")) == string_sample
            return f"Save/Read {string_sample!r}"

        def as_json() -> str:
            assert store.SaveJson[dict[str, int]](self.key("json_key"), dict_sample)
            assert store.ReadJson[dict[str, int]](self.key("json_key")) == dict_sample
            return "SaveJson/ReadJson[Dict[str, int]]"

        def as_xml() -> str:
            xml_sample = ET.Element("sample")
            for name, value in dict_sample.items():
                ET.SubElement(xml_sample, name).text = str(value)
            assert store.SaveXml[ET.Element](self.key("xml_key"), xml_sample)
            element = store.ReadXml[ET.Element](self.key("xml_key"))
            rebuilt = {child.tag: int(child.text or 0) for child in element}
            assert rebuilt == dict_sample
            assert store.ReadXml[dict[str, int]](self.key("xml_key")) == dict_sample
            return "XElement from a dict, and back to a dict"

        def as_bytes() -> str:
            assert store.SaveBytes(self.key("bytes_key"), bytes_sample)
            assert store.ReadBytes(self.key("bytes_key")) == bytes_sample
            return f"SaveBytes/ReadBytes {len(bytes_sample)} bytes"

        def zipped() -> str:
            archive = Compression.ZipBytes(bytes(string_sample, "utf-8"), "data")
            assert store.SaveBytes(self.key("bytesKey.zip"), archive)
            unzipped = Compression.unzip_bytes(store.ReadBytes(self.key("bytesKey.zip")) or b"")
            assert unzipped == {"data": string_sample.encode()}
            return f"ZipBytes, {len(archive)} bytes, unzipped back"

        self.step("Save and read a string", string)
        self.step("Save and read JSON", as_json)
        self.step("Save and read XML", as_xml)
        self.step("Save and read bytes", as_bytes)
        self.step("Save and read zipped bytes", zipped)

    def keys_and_iteration(self) -> None:
        def action() -> str:
            listed = set(self.backtest.Keys)
            assert self.made <= listed, sorted(self.made - listed)
            pairs = {kvp.Key: kvp.Value for kvp in self.backtest if kvp.Key in self.made}
            assert pairs.keys() == self.made
            assert all(value is not None for value in pairs.values())
            return f"{len(self.made)} keys listed and iterated as KeyValuePairs"

        self.step("Keys and iteration", action)

    def cache_between_nodes(self) -> None:
        def action() -> str:
            project_a, project_b = self.backtest, self.research
            key = self.key("123")
            project_a.Save(key, "data from project A")
            project_b.Save(key, "new data from project B")
            stale = project_a.Read(key)
            assert stale == "data from project A", stale  # the documented cache behaviour
            project_a.Clear()
            fresh = project_a.Read(key)
            assert fresh == "new data from project B", fresh
            return "node A reads its cached value until Clear(), then node B's"

        self.step("Two nodes: the cache, then Clear()", action)

    def insights(self) -> None:
        insight_key = f"{self.backtest.ProjectId}/demo/insights"
        self.made.add(insight_key)
        now = datetime.now(UTC).replace(microsecond=0)
        active = [
            Insight(
                Symbol="SPY",
                Type="Price",
                Direction="Up",
                Period=timedelta(days=5),
                Magnitude=0.025,
                GeneratedTimeUtc=now,
            ),
            Insight(
                Symbol="QQQ",
                Type="Price",
                Direction="Down",
                Period=timedelta(days=2),
                GeneratedTimeUtc=now,
            ),
        ]

        def action() -> str:
            first = self.backtest  # OnEndOfAlgorithm of the first deployment
            content = ",".join([insight.model_dump_json() for insight in active])
            assert first.Save(insight_key, f"[{content}]")
            settings = _second_node(self.settings, self.scratch / "redeployed")
            with ObjectStore(settings) as second:  # Initialize of the next deployment
                assert second.ContainsKey(insight_key)
                insights = second.ReadJson[list[Insight]](insight_key)
            assert insights == active
            return f"{len(insights)} insights read back with ReadJson[List[Insight]]"

        self.step("Insights preserved between deployments", action)

    def quota(self) -> None:
        def action() -> str:
            usage = self.backtest.usage()
            return (
                f"{usage.bytes:,} of {usage.max_size:,} bytes "
                f"({usage.bytes / max(usage.max_size, 1):.3%}), "
                f"{usage.files:,} of {usage.max_files:,} files"
            )

        self.step("Usage against the quota", action)

    def clean_up(self, keep: bool) -> None:
        def action() -> str:
            if keep:
                return f"kept {len(self.made)} keys under {self.prefix}/"
            removed = 0
            for key in sorted(self.made):
                if self.backtest.ContainsKey(key):
                    self.backtest.Delete(key)
                    removed += 1
            assert not [key for key in self.backtest.Keys if key in self.made]
            return f"deleted {removed} keys"

        self.step("Clean up", action)

    def close(self) -> None:
        self.backtest.close()
        self.research.close()


def _second_node(settings: ObjectStoreSettings, folder: Path) -> ObjectStoreSettings:
    """Settings of another machine on the same store: a cache and local folder of its own
    (fresh for every run, as a new machine would be). With endpoint_url=local it shares
    the one embedded server, which does not depend on either folder."""
    update: dict[str, Any] = {"cache_dir": folder / "cache", "local_root": folder / "local"}
    return settings.model_copy(update=update)


def run(settings: ObjectStoreSettings, *, keep: bool, console: Console) -> bool:
    """Run every step; print the table; True if all passed."""
    started = time.monotonic()
    chart = settings.local_root / ".demo" / "sma.png"
    chart.unlink(missing_ok=True)  # so that a chart shown below is this run's
    scratch = tempfile.TemporaryDirectory(prefix="objectstore-demo-")
    demo = Demo(settings, chart, Path(scratch.name))
    try:
        demo.data_types()
        demo.keys_and_iteration()
        demo.cache_between_nodes()
        dataframes(demo)
        plotting(demo)
        demo.insights()
        demo.quota()
        demo.clean_up(keep)
    finally:
        demo.close()
        scratch.cleanup()
    table = Table(
        title=escape(
            f"objectstore-s3 demo: {settings.endpoint_url}, bucket {settings.bucket!r}, "
            f"organization {settings.organization_id!r}"
        )
    )
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("", justify="center")
    table.add_column("detail", overflow="fold")
    for number, step in enumerate(demo.steps, 1):
        mark = "[green]✓[/]" if step.ok else "[red]✗[/]"
        table.add_row(str(number), escape(step.name), mark, escape(step.detail))
    console.print(table)
    passed = sum(step.ok for step in demo.steps)
    console.print(f"{passed}/{len(demo.steps)} steps passed in {time.monotonic() - started:.1f}s")
    # Paths on lines of their own, never wrapped, so that they can be copied.
    if chart.exists():
        console.print(f"chart: {escape(str(chart))}", soft_wrap=True)
    state = local_server_status(settings) if settings.endpoint_url == "local" else None
    if state is not None:
        console.print(
            f"The embedded S3 server keeps running (pid {state.pid}, {state.url}, data in "
            f"{escape(str(settings.server_dir))}); `objectstore-s3 server stop` stops it.",
            soft_wrap=True,
        )
    console.print("See these keys in the browser: objectstore-s3 ui", soft_wrap=True)
    return passed == len(demo.steps)
