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
    for index in range(30):
        store.save(f"p/k050/deep{index}", b"yy")  # a sub-folder among the keys: one row
    first = client.get("/browse", params={"prefix": "p/"}).text
    assert _rows(first) == [f"k{index:03d}" for index in range(50)]
    assert 'id="next"' in first
    assert "50 entries" in first
    after = re.search(r'id="next"|href="([^"]*)" id="next"', first)
    assert after is not None
    second = client.get(after.group(1).replace("&amp;", "&")).text
    assert _rows(second) == ["k050", "k050/"] + [f"k{index:03d}" for index in range(51, 99)]
    third_link = re.search(r'href="([^"]*)" id="next"', second)
    assert third_link is not None
    third = client.get(third_link.group(1).replace("&amp;", "&")).text
    assert _rows(third) == [f"k{index:03d}" for index in range(99, 120)]
    assert 'id="next"' not in third
    assert "the last of this folder" in third
    assert 'id="first"' in third
    filtered = client.get("/browse", params={"prefix": "p/", "filter": "k11"}).text
    assert _rows(filtered) == [f"k11{digit}" for digit in range(10)]


def test_a_folder_page_lists_only_as_far_as_the_page(console: Console) -> None:
    client, guard, store = console(page_size=10)
    signed_in(client, guard)
    for index in range(100):
        store.save(f"q/k{index:03d}", b"x")
    asked: list[int] = []
    real = store.list_page

    def counted(prefix: str, **options: object) -> list[object]:
        found = real(prefix, **options)  # type: ignore[arg-type]
        asked.append(len(found))
        return found  # type: ignore[return-value]

    store.list_page = counted  # type: ignore[method-assign]
    page = client.get("/browse", params={"prefix": "q/"}).text
    assert _rows(page) == [f"k{index:03d}" for index in range(10)]
    assert asked == [11]  # a page and one key of the listing, never the folder's 100 keys


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


def test_the_usage_page_tells_the_ledger_health_in_words(console: Console) -> None:
    client, guard, store = console()
    signed_in(client, guard)
    assert "There is no ledger yet" in client.get("/usage").text
    store.save("p/a", b"12345")
    page = client.get("/usage", params={"refresh": "1"}).text
    # The save is under this store's lease: the ledger has not counted it yet.
    assert "The ledger counts 0 files and 0 B (the listing above: 1 files, 5 B" in page
    assert "1 open store holds a lease: room set aside" in page
    assert "it saves into without asking the bucket" in page
    assert "No write is in doubt" in page
    assert "No drift is known" in page
    health = store.ledger_health()
    assert health is not None
    assert (health.files, health.bytes, health.leases) == (0, 0, 1)
    assert health.last_recount is not None  # the ledger began with a count
    store.reconcile_usage()
    health = store.ledger_health()
    assert health is not None
    assert (health.files, health.bytes) == (1, 5)
    page = client.get("/usage").text
    assert "The ledger counts 1 files and 5 B." in page
    assert f"Last recounted from a listing at {health.last_recount:%Y-%m-%d %H:%M:%S}" in page


def test_the_node_page_shows_cache_hits_pending_work_and_unsaved_files(console: Console) -> None:
    client, guard, store = console(persistence_interval_seconds=3600)
    signed_in(client, guard)
    store.save("p/behind", b"123")
    store.delete("p/behind")
    store.save("p/kept", b"abcd")
    status = store.node_status()
    assert (status.pending_writes, status.pending_deletes, status.pending_bytes) == (1, 1, 4)
    page = client.get("/node").text
    assert "1 save (4 B) and 1 delete are accepted on this node" in page
    store.flush()
    with open(store.get_file_path("p/kept"), "wb") as local:
        local.write(b"changed here")
    page = client.get("/node").text
    assert "nothing: the bucket has every save and delete" in page
    assert "1 local file changed since it was last uploaded" in page
    assert "<code>p/kept</code>" in page
    store.save("p/cached", b"xyz")
    store.flush()
    before = store.node_status()
    store.read_bytes("p/cached")
    store.read_bytes("p/cached")
    after = store.node_status()
    reads = (after.cache_hits + after.cache_misses) - (before.cache_hits + before.cache_misses)
    assert reads == 2
    assert after.cache_hits - before.cache_hits >= 1
    assert after.cache_entries >= 1
    assert after.cache_bytes > 0
    assert "hit rate" in client.get("/node").text


def test_list_page_lays_this_nodes_pending_work_over_each_page(console: Console) -> None:
    _, _, store = console(persistence_interval_seconds=3600)
    for index in range(10):
        store.save(f"p/k{index}", b"x")
    store.flush()
    store.delete("p/k3")  # pending: gone from its page
    store.save("p/k35", b"yy")  # pending: shown on the page its key falls in
    assert [s.key for s in store.list_page("p/", limit=4)] == ["p/k0", "p/k1", "p/k2", "p/k35"]
    second = store.list_page("p/", start_after="p/k35", limit=4)
    assert [s.key for s in second] == ["p/k4", "p/k5", "p/k6", "p/k7"]
    assert [s.key for s in store.list_page("p/", start_after="p/k8")] == ["p/k9"]
    assert store.list_page("p/", start_after="p/k9") == []
    assert store.list_page("p/", limit=1)[0].etag is not None
