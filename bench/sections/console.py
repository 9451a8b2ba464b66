"""Row 12 (ui): the console (`objectstore-s3 ui`) on a real uvicorn server on 127.0.0.1.

Folder pages of 10,000 and 100,000 keys on the in-memory backend: time to the first byte
of the answer and to the whole rendered page (the HTML is rendered on the server; the
page has no script that renders rows), for the first page (a paged listing that stops
once the page is full) and for a page halfway through the folder (`after=` a key: the
listing is read up to there). And the object page of
a large object on SeaweedFS (1 GiB in the full run): its preview reads at most 1 MiB
(`store.read_range`), against reading the whole value.
"""

from __future__ import annotations

import http.client
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from bench.harness import Bench
from bench.measure import Row, human
from bench.server import BUCKET
from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.transport.memory import MemoryBackend
from objectstore_s3.ui.preview import PREVIEW_BYTES
from objectstore_s3.ui.server import ConsoleServer

MiB = 1024 * 1024


class Client:
    """GETs against a console, signed in with its token's cookie."""

    def __init__(self, server: ConsoleServer) -> None:
        self.port = server.port
        answer = self._get(urlsplit(server.url).path + "?" + urlsplit(server.url).query)
        cookie = answer[2].get("set-cookie", "")
        self.cookie = cookie.split(";", 1)[0]

    def _get(self, target: str, cookie: str = "") -> tuple[float, float, dict[str, str]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        started = time.perf_counter()
        connection.request("GET", target, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()  # the status line and headers: the first bytes
        first = time.perf_counter() - started
        body = response.read()
        whole = time.perf_counter() - started
        connection.close()
        assert response.status in (200, 303), (response.status, body[:200])
        return first, whole, {name.lower(): value for name, value in response.getheaders()}

    def get(self, path: str, **params: object) -> tuple[float, float]:
        first, whole, _ = self._get(f"{path}?{urlencode(params)}", self.cookie)
        return first, whole


def _memory_console(count: int, folder: Path) -> tuple[ConsoleServer, ObjectStore]:
    backend = MemoryBackend()
    settings = ObjectStoreSettings(
        organization_id="console",
        bucket="console-bench",
        endpoint_url="http://127.0.0.1:9",
        access_key_id="bench",
        secret_access_key="bench",  # noqa: S106 - the in-memory backend checks nothing
        cache_dir=folder / "cache",
        local_root=folder / "local",
        storage_file_count=10**9,
    )
    store = ObjectStore(settings, backend=backend)
    store.save("123/first", b"x")  # the bucket's scope exists; the rest is put directly
    for index in range(count):
        backend.put(f"console/123/k{index:06d}", b"x" * 100)
    server = ConsoleServer(store)
    server.start()
    return server, store


def folder_rows(count: int, rounds: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as folder:
        server, store = _memory_console(count, Path(folder))
        try:
            client = Client(server)
            firsts, laters = [], []
            for round_ in range(rounds):
                firsts.append(client.get("/browse", prefix="123/", refresh="1"))
                middle = f"123/k{count // 2 + round_:06d}"  # the listing skips to there
                laters.append(client.get("/browse", prefix="123/", after=middle))
        finally:
            server.stop()
            store.close()
    rows = []
    pages = (("first page", firsts), ("a page halfway (listed up to it)", laters))
    for label, times in pages:
        first = statistics.median(t[0] for t in times)
        whole = statistics.median(t[1] for t in times)
        rows.append(
            Row(
                f"12. console folder of {count:,} keys, {label} (in-memory backend)",
                f"{human(whole)} to the rendered page",
                "time to first byte",
                human(first),
                notes=f"200 rows a page; median of {rounds}",
            )
        )
    return rows


def preview_rows(b: Bench) -> list[Row]:
    size = 1024 if b.scale.file_mib >= 256 else b.scale.file_mib  # MiB
    store = b.store("console-preview")
    key = "123/big.bin"
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "big.bin"
        with source.open("wb") as handle:
            handle.truncate(size * MiB)
        b.boto.upload_file(str(source), BUCKET, f"console-preview/{key}")
    asked: list[int] = []
    real = store.read_range
    store.read_range = lambda k, s, e: asked.append(len(got := real(k, s, e))) or got  # type: ignore[method-assign]
    server = ConsoleServer(store)
    server.start()
    try:
        client = Client(server)
        times = [client.get("/object", key=key) for _ in range(max(b.scale.rounds, 3))]
    finally:
        server.stop()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        store.download_file(key, Path(folder) / "whole")
    whole = time.perf_counter() - started
    page = statistics.median(t[1] for t in times)
    return [
        Row(
            f"12. console preview of a {size:,} MiB object (SeaweedFS, boto3)",
            f"{human(page)} to the rendered page",
            f"download_file of the whole {size:,} MiB",
            human(whole),
            f"{whole / page:.0f}x faster",
            f"reads ≤ {PREVIEW_BYTES // MiB} MiB",
            "yes" if asked and max(asked) <= PREVIEW_BYTES else "**no**",
            notes=f"read_range returned {max(asked):,} bytes per preview; {len(times)} pages",
        )
    ]


def run(b: Bench) -> list[Row]:
    rows = []
    for count in (10_000, 100_000):
        rows += folder_rows(count, b.scale.rounds)
    return rows + preview_rows(b)
