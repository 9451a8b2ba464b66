"""The demo's sections on DataFrames and plots (the seed's pandas and matplotlib
examples, which need the `all` extra): saved through GetFilePath in each format and
read back on the other node; SMA values saved as text, read and plotted."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from objectstore_s3.store import ObjectStore

__all__ = ["dataframes", "plotting"]


class Demo(Protocol):
    """What these sections use of demo.py's `Demo`."""

    backtest: ObjectStore
    research: ObjectStore
    chart: Path
    frame: Any  # the DataFrame, once made

    def key(self, name: str) -> str: ...

    def step(self, name: str, action: Callable[[], str]) -> None: ...


def dataframes(demo: Demo) -> None:
    """A DataFrame saved through GetFilePath in each format, read on the other node."""

    def make() -> str:
        import pandas as pd

        rng = random.Random(360)  # noqa: S311  (simulated prices)
        close = 400.0
        rows = []
        start = datetime(2023, 1, 3)
        for day in range(360):
            change = rng.gauss(0, 4)
            open_ = close
            close = max(1.0, close + change)
            rows.append(
                {
                    "time": start + timedelta(days=day),
                    "open": round(open_, 2),
                    "high": round(max(open_, close) + abs(rng.gauss(0, 2)), 2),
                    "low": round(min(open_, close) - abs(rng.gauss(0, 2)), 2),
                    "close": round(close, 2),
                    "volume": rng.randrange(50_000_000, 120_000_000),
                }
            )
        demo.frame = pd.DataFrame(rows)
        return "360 daily bars of a simulated SPY (time, open, high, low, close, volume)"

    demo.step("DataFrame of daily history", make)
    for fmt in ("csv", "json", "xml", "parquet", "pickle"):
        demo.step(f"DataFrame via GetFilePath: {fmt}", functools.partial(_round_trip, demo, fmt))


def _round_trip(demo: Demo, fmt: str) -> str:
    import pandas as pd

    if demo.frame is None:
        raise RuntimeError("no DataFrame (see the step above)")
    df = demo.frame
    key = demo.key(f"df_to_{fmt}")
    file_path = demo.backtest.GetFilePath(key)
    {
        "csv": lambda: df.to_csv(file_path),
        "json": lambda: df.to_json(file_path, date_format="iso"),
        "xml": lambda: df.to_xml(file_path),
        "parquet": lambda: df.to_parquet(file_path),
        "pickle": lambda: df.to_pickle(file_path),
    }[fmt]()
    assert demo.backtest.Save(key)
    size = Path(file_path).stat().st_size
    other = demo.research.GetFilePath(key)  # another node, another folder
    assert other != file_path
    readers: dict[str, Callable[[str], pd.DataFrame]] = {
        "csv": pd.read_csv,
        "json": pd.read_json,
        "xml": pd.read_xml,
        "parquet": pd.read_parquet,
        "pickle": pd.read_pickle,
    }
    reread = readers[fmt](other)
    assert len(reread) == len(df)
    assert [round(value, 2) for value in reread["close"]] == list(df["close"])
    return f"{size:,} bytes, read back on the research node"


def plotting(demo: Demo) -> None:
    """The backtest saves SMA values as text; the research node reads and plots them."""
    content_key = demo.key("sma_values_python")

    def backtest() -> str:
        rng = random.Random(22)  # noqa: S311  (simulated prices)
        price = 470.0
        window: list[float] = []
        content = ""
        start = datetime(2024, 1, 2, 9, 31)
        for minute in range(390):
            price += rng.gauss(0, 0.15)
            window = ([*window, price])[-22:]
            if len(window) == 22:
                end_time = start + timedelta(minutes=minute)
                content += f"{end_time},{sum(window) / 22}\n"
        assert demo.backtest.Save(content_key, content)
        return f"SMA(22) over {content.count(chr(10))} minutes saved as text"

    def research() -> str:
        import pandas as pd

        content = demo.research.Read(content_key)
        assert content is not None
        data = {}
        for line in content.split("\n"):
            csv = line.split(",")
            if len(csv) > 1:
                data[csv[0]] = float(csv[1])
        series = pd.Series(data, index=data.keys())
        series.index = pd.to_datetime(series.index)
        times = [moment.to_pydatetime() for moment in series.index]
        _plot(times, [float(value) for value in series], demo.chart)
        return f"{len(series)} points plotted; the chart's path is below the table"

    demo.step("Backtest saves SMA values", backtest)
    demo.step("Research reads and plots them", research)


def _plot(times: list[datetime], values: list[float], png: Path) -> None:
    """The research node's chart: the series named, hour ticks, no empty margins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 4), layout="constrained")
    axes.plot(times, values, linewidth=1.4)  # type: ignore[arg-type]
    axes.set_title(f"SMA(22) of SPY, minute bars, {times[0]:%Y-%m-%d} (simulated backtest)")
    axes.set_xlabel("Time (exchange hours)")
    axes.set_ylabel("SMA(22), USD")
    axes.xaxis.set_major_locator(mdates.HourLocator())  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    axes.margins(x=0)
    axes.grid(alpha=0.3)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=100)
    plt.close(figure)
