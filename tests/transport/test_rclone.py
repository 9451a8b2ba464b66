"""`rclone serve s3`, an independent S3 implementation without conditional writes: exact
quotas refuse it with a clear error, best-effort quotas and the rest of the API work.
(The contract suite also runs on it: RCLONE_MODULES in conftest.py.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ServerCapabilityError
from tests.conftest import store_settings
from tests.support.rclone import RcloneServer

pytestmark = pytest.mark.rclone


@pytest.fixture
def bucket(rclone: RcloneServer, tmp_path: Path) -> str:
    with ObjectStore(store_settings(tmp_path, rclone, quota_enforcement="off")) as store:
        store.create_bucket()
    return "contract-tests"


def test_exact_quotas_refuse_a_server_without_conditional_writes(
    rclone: RcloneServer, bucket: str, tmp_path: Path
) -> None:
    store = ObjectStore(store_settings(tmp_path, rclone, quota_enforcement="exact"))
    with pytest.raises(ServerCapabilityError) as caught:
        store.save("k", "v")
    message = str(caught.value)
    assert "conditional writes" in message
    assert "If-None-Match" in message
    assert "quota_enforcement" in message
    assert not store.contains_key("k")  # refused before anything was written
    store.close()


def test_best_effort_quotas_hold_on_one_node_and_warn_once(
    rclone: RcloneServer, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = store_settings(
        tmp_path, rclone, quota_enforcement="best_effort", storage_file_count=3
    )
    with caplog.at_level(logging.WARNING, logger="objectstore_s3"), ObjectStore(settings) as store:
        assert [store.save(f"k{index}", "v") for index in range(4)] == [True] * 3 + [False]
        assert store.save("k0", "an overwrite needs no new file")
        store.delete("k1")
        assert store.save("k3", "room again")
        assert store.usage().files == 3
        assert sorted(store.keys) == ["k0", "k2", "k3"]
    warnings = [r.message for r in caplog.records if "best_effort" in r.getMessage()]
    assert len(warnings) <= 1  # once per process and bucket (maybe earlier in the session)


def test_quota_off_writes_no_ledger(rclone: RcloneServer, bucket: str, tmp_path: Path) -> None:
    settings = store_settings(tmp_path, rclone, quota_enforcement="off", storage_file_count=1)
    with ObjectStore(settings) as store:
        assert all(store.save(f"k{index}", "v") for index in range(3))  # no accounting
    ledger = rclone.folder / "root" / bucket / ".objectstore" / settings.organization_id
    assert not (ledger / "usage.json").exists()


def test_basic_api_round_trip(rclone: RcloneServer, bucket: str, tmp_path: Path) -> None:
    settings = store_settings(tmp_path, rclone, quota_enforcement="best_effort")
    with ObjectStore(settings) as store:
        store.save_json("j", {"a": 1})
        assert store.read_json("j") == {"a": 1}
        path = Path(store.get_file_path("f.csv"))
        path.write_text("x,y\n1,2\n")
        assert store.save("f.csv")
        assert [kvp.key for kvp in store] == ["f.csv", "j"]
        assert store.delete("j")
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "b"})) as second:
        assert second.read("f.csv") == "x,y\n1,2\n"
        assert second.keys == ["f.csv"]
