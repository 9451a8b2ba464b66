"""The seed document's Python snippets, run as written against our API.

Each snippet below is copied verbatim from shared/seed/object-store-docs.txt (checked
when that file is beside the repository, as in CI) and executed with `self.ObjectStore`
and `qb.ObjectStore` being an `ObjectStore`. One snippet is not valid Python in the seed
(`$"{self.ProjectId}/bytesKey.zip"`, a C# interpolated string); it runs with the `$`
read as Python's `f`.
"""

from __future__ import annotations

import os
import textwrap
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List

import pytest
from pydantic import BaseModel

from objectstore_s3 import Compression
from tests.conftest import StoreFactory

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "object-store-docs.txt"

SNIPPETS = {
    "sample": """
string_sample = "My string"
bytes_sample = str.encode("My String")
""",
    "save_string": """
save_successful = self.ObjectStore.Save(f"{self.ProjectId}/string_key", string_sample)
""",
    "save_bytes": """
save_successful = self.ObjectStore.SaveBytes(f"{self.ProjectId}/bytes_key", bytes_sample)
""",
    "zip": """
zipped_data_sample = Compression.ZipBytes(bytes(string_sample, "utf-8"), "data")
zip_save_successful = self.ObjectStore.SaveBytes($"{self.ProjectId}/bytesKey.zip", zipped_data_sample)
""",
    "read": """
string_data = self.ObjectStore.Read(f"{self.ProjectId}/string_key")
""",
    "read_bytes": """
byte_data = self.ObjectStore.ReadBytes(f"{self.ProjectId}/bytes_key")
""",
    "iterate": """
for kvp in self.ObjectStore:
    key = kvp.Key
    value = kvp.Value
""",
    "delete_all": """
for kvp in self.ObjectStore:
""",
    "keys": """
for key in self.ObjectStore.Keys:
""",
    "contains": """
if self.ObjectStore.ContainsKey(key):
""",
    "file_path": """
file_path = self.ObjectStore.GetFilePath(key)
""",
    "sma_save": """
        self.ObjectStore.Save('sma_values_python', self.content)
""",
    "sma_read": """
content = qb.ObjectStore.Read("sma_values_python")
""",
    "sma_series": """
data = {}
for line in content.split('\\n'):
    csv = line.split(',')
    if len(csv) > 1:
        data[csv[0]] = float(csv[1])
series = pd.Series(data, index=data.keys())
""",
    "insight_key": """
            self.insight_key = f"{self.ProjectId}/insights"
""",
    "insights_save": """
        self.ObjectStore.Save(self.insight_key, f'[{content}]')
""",
    "insights_read": """
    if self.ObjectStore.ContainsKey(self.insight_key):
        insights = self.ObjectStore.ReadJson[List[Insight]](self.insight_key)
""",
    "live_read": """
if self.ObjectStore.ContainsKey(key):
    value = self.ObjectStore.Read(key)
""",
}


class Insight(BaseModel):
    """Stand-in for LEAN's Insight as JsonConvert writes it."""

    Symbol: str
    Type: int
    Direction: int
    Period: float
    Magnitude: float | None = None


def run(name: str, scope: dict[str, Any], body: str = "") -> dict[str, Any]:
    """Run one snippet (a trailing block header gets `body`); returns the scope."""
    code = textwrap.dedent(SNIPPETS[name]).strip("\n")
    code = code.replace('$"', 'f"')  # the one C#-ism in the seed's Python
    if code.rstrip().endswith(":"):
        code += "\n" + textwrap.indent(body or "pass", "    ")
    exec(compile(code, f"<seed:{name}>", "exec"), scope)  # noqa: S102  (our own snippets)
    return scope


def test_snippets_are_verbatim_from_the_seed() -> None:
    if not SEED.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI expects the seed document at {SEED}")
        pytest.skip("shared/seed is not beside this checkout")
    seed = SEED.read_text()
    for name, snippet in SNIPPETS.items():
        for line in textwrap.dedent(snippet).strip("\n").splitlines():
            assert line.strip() in seed, f"{name}: {line!r} is not in the seed"


def test_seed_walkthrough(make_store: StoreFactory) -> None:
    pd = pytest.importorskip("pandas")
    store = make_store(project_id=12345)
    algorithm = SimpleNamespace(ObjectStore=store, ProjectId=store.ProjectId)
    scope: dict[str, Any] = {"self": algorithm, "Compression": Compression, "pd": pd}

    run("sample", scope)
    run("save_string", scope)
    assert scope["save_successful"] is True
    run("save_bytes", scope)
    run("zip", scope)
    assert scope["zip_save_successful"] is True
    run("read", scope)
    assert scope["string_data"] == "My string"
    run("read_bytes", scope)
    assert scope["byte_data"] == b"My String"
    assert Compression.unzip_bytes(store.ReadBytes("12345/bytesKey.zip")) == {"data": b"My string"}

    run("iterate", scope)
    assert scope["key"] == "12345/string_key"  # the last key, sorted
    seen: list[str] = []
    scope["seen"] = seen
    run("keys", scope, "seen.append(key)")
    assert seen == ["12345/bytesKey.zip", "12345/bytes_key", "12345/string_key"]

    scope["key"] = "12345/string_key"
    run("contains", scope, "found = True")
    assert scope["found"] is True
    run("live_read", scope)
    assert scope["value"] == "My string"

    scope["key"] = "df_to_csv"
    run("file_path", scope)
    frame = pd.DataFrame({"close": [1.5, 2.5]})
    frame.to_csv(scope["file_path"])
    store.Save("df_to_csv")
    assert pd.read_csv(scope["file_path"])["close"].tolist() == [1.5, 2.5]

    # "Delete Data": check, then delete; and the delete-everything loop.
    scope["key"] = "12345/string_key"
    run("contains", scope, "self.ObjectStore.Delete(key)")
    assert not store.ContainsKey("12345/string_key")
    run("delete_all", scope, "self.ObjectStore.Delete(kvp.Key)")
    assert store.Keys == []


def test_plotting_from_backtest_to_research(make_store: StoreFactory, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    backtest = make_store()
    research = make_store(cache_dir=tmp_path / "research-cache")
    algorithm = SimpleNamespace(ObjectStore=backtest, content="")
    for minute, value in enumerate([10.0, 10.5, 11.0]):
        algorithm.content += f"2024-01-02 09:{31 + minute}:00,{value}\n"
    run("sma_save", {"self": algorithm})
    scope = run("sma_read", {"qb": SimpleNamespace(ObjectStore=research)})
    scope["pd"] = pd
    run("sma_series", scope)
    assert scope["series"].tolist() == [10.0, 10.5, 11.0]


def test_insights_between_deployments(make_store: StoreFactory, tmp_path: Path) -> None:
    first = make_store(project_id=777)
    algorithm = SimpleNamespace(ObjectStore=first, ProjectId=first.ProjectId)
    run("insight_key", {"self": algorithm})
    insight = Insight(
        Symbol="SPY", Type=0, Direction=1, Period=timedelta(5).total_seconds(), Magnitude=0.025
    )
    content = ",".join([insight.model_dump_json()])
    run("insights_save", {"self": algorithm, "content": content})

    second = make_store(project_id=777, cache_dir=tmp_path / "second-deployment")
    redeployed = SimpleNamespace(ObjectStore=second, ProjectId=second.ProjectId)
    run("insight_key", {"self": redeployed})
    scope = run("insights_read", {"self": redeployed, "List": List, "Insight": Insight})
    assert scope["insights"] == [insight]
