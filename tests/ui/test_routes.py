"""The console's pages and actions over the in-memory backend: folders paged out of one
listing, previews by content reading at most 1 MiB, upload and delete through the store
(quota included), and versions with restore."""

from __future__ import annotations

import io
import json
import re

from objectstore_s3.ui.folders import FolderIndex
from objectstore_s3.ui.preview import PREVIEW_BYTES, preview
from tests.ui.conftest import Console, signed_in

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000020101000518d84e0000000049454e44ae426082"
)


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr class="(?:key|folder)"><td><a href="[^"]*">([^<]*)</a>', page)


def test_a_big_folder_is_shown_a_page_at_a_time(console: Console) -> None:
    client, guard, store = console(page_size=50)
    signed_in(client, guard)
    for index in range(120):
        store.save(f"p/k{index:03d}", b"x")
    store.save("p/sub/deep", b"yy")
    first = client.get("/browse", params={"prefix": "p/"}).text
    assert _rows(first)[:2] == ["sub/", "k000"]
    assert len(_rows(first)) == 50
    assert "page 1 of 3 (121 entries)" in first
    assert "121 keys" in first
    last = client.get("/browse", params={"prefix": "p/", "page": "3"}).text
    assert _rows(last) == [f"k{index:03d}" for index in range(99, 120)]
    filtered = client.get("/browse", params={"prefix": "p/", "filter": "k11"}).text
    assert _rows(filtered) == [f"k11{digit}" for digit in range(10)]


def test_the_folder_index_pages_without_touching_other_rows() -> None:
    from objectstore_s3.lean import ObjectStat

    stats = [ObjectStat(f"f/k{i:06d}", 1, None, None) for i in range(100_000)]
    stats += [ObjectStat("f/a/x", 5, None, None), ObjectStat("f/k1/y", 7, None, None)]
    index = FolderIndex.build("f/", sorted(stats), 0.0)
    page = index.page(2, 100, "k")  # the folder k1/, then 100,000 keys
    assert page.total == 1 + 100_000
    assert page.pages == 1001
    assert [entry.name for entry in page.rows] == [f"k{i:06d}" for i in range(99, 199)]
    assert [entry.name for entry in index.page(1, 100, "k0999").rows][-1] == "k099999"
    assert index.page(1, 100).rows[0].name == "a"
    assert index.page(1, 100).rows[0].files == 1


def test_previews_by_content(console: Console) -> None:
    client, guard, store = console()
    signed_in(client, guard)
    store.save_json("1/config.json", {"alpha": [1, 2, {"beta": True}]})
    store.save_bytes("1/chart.png", PNG)
    store.save("1/prices.csv", "day,close\n1,10.5\n2,11.0\n")
    store.save("1/feed.xml", "<root><a>1</a></root>")
    store.save_bytes("1/blob.bin", bytes(range(256)))
    page = client.get("/object", params={"key": "1/config.json"}).text
    assert 'id="json-tree"' in page
    assert "<details open>" in page
    assert "beta" in page
    page = client.get("/object", params={"key": "1/chart.png"}).text
    assert 'id="preview-image"' in page
    image = client.get("/image", params={"key": "1/chart.png"})
    assert image.headers["content-type"] == "image/png"
    assert image.content == PNG
    page = client.get("/object", params={"key": "1/prices.csv"}).text
    assert 'id="preview-table"' in page
    assert "float64" in page
    assert "11.0" in page
    assert "&lt;root&gt;" in client.get("/object", params={"key": "1/feed.xml"}).text
    page = client.get("/object", params={"key": "1/blob.bin"}).text
    assert "00000000  00 01 02 03" in page


def test_a_preview_reads_at_most_one_mib(console: Console) -> None:
    client, guard, store = console()
    signed_in(client, guard)
    store.save_bytes("big/value.txt", b"line\n" * (PREVIEW_BYTES // 2))  # 2.5 MiB of text
    asked: list[tuple[int, int]] = []
    real = store.read_range
    store.read_range = lambda key, start, end: (
        asked.append((start, end))
        or real(  # type: ignore[method-assign]
            key, start, end
        )
    )
    page = client.get("/object", params={"key": "big/value.txt"}).text
    assert asked == [(0, PREVIEW_BYTES)]
    assert f"The first {PREVIEW_BYTES:,} of {5 * PREVIEW_BYTES // 2:,} bytes" in page


def test_parquet_is_a_table_with_its_column_types() -> None:
    import pandas

    buffer = io.BytesIO()
    pandas.DataFrame({"close": [1.5, 2.5], "symbol": ["SPY", "QQQ"]}).to_parquet(buffer)
    shown = preview("1/frame.parquet", buffer.getvalue(), len(buffer.getvalue()))
    assert shown.kind == "table"
    assert shown.columns[0] == ("close", "double")
    assert "string" in shown.columns[1][1]
    assert shown.rows[1] == ["2.5", "QQQ"]


def test_upload_goes_through_the_store_and_its_quota(console: Console) -> None:
    client, guard, store = console(storage_file_count=2)
    signed_in(client, guard)
    before = client.get("/browse").text
    assert 'id="files-bar" min="0" max="2" value="0"' in before
    headers = {"x-csrf-token": guard.csrf, "content-type": "application/octet-stream"}
    saved = client.post("/upload", params={"key": "1/a.bin"}, content=b"abc", headers=headers)
    assert saved.json() == {"saved": "1/a.bin"}
    assert store.read_bytes("1/a.bin") == b"abc"
    after = client.get("/browse").text
    assert 'id="files-bar" min="0" max="2" value="1"' in after  # the change shows at once
    client.post("/upload", params={"key": "1/b.bin"}, content=b"b", headers=headers)
    refused = client.post("/upload", params={"key": "1/c.bin"}, content=b"c", headers=headers)
    assert refused.status_code == 507
    assert "ObjectStore limit" in refused.json()["error"]
    assert "1/c.bin" not in store


def test_delete_asks_first_then_removes_the_key(console: Console) -> None:
    client, guard, store = console()
    signed_in(client, guard)
    store.save("1/old", "x")
    confirm = client.get("/confirm-delete", params={"key": "1/old"}).text
    assert 'action="/delete"' in confirm
    assert "1/old" in confirm
    done = client.post("/delete", data={"key": "1/old", "csrf": guard.csrf})
    assert done.headers["location"].startswith("/browse?prefix=1%2F&done=Deleted")
    assert "1/old" not in store
    assert client.post("/delete", data={"key": "1/old", "csrf": guard.csrf}).status_code == 404


def test_versions_are_listed_and_restored(console: Console) -> None:
    client, guard, store = console()
    signed_in(client, guard)
    store.save_json("1/model.json", {"v": 1})
    store.save_json("1/model.json", {"v": 2})
    versions = store.history("1/model.json")
    page = client.get("/object", params={"key": "1/model.json"}).text
    assert 'id="versions"' in page
    assert "(current)" in page
    if len(versions) < 2:  # the in-memory bucket without versioning: one version, no restore
        assert 'action="/restore"' not in page
        return
    older = versions[1].version_id
    restored = client.post(
        "/restore", data={"key": "1/model.json", "version": older, "csrf": guard.csrf}
    )
    assert restored.status_code == 303
    assert json.loads(store.read("1/model.json") or "") == {"v": 1}
