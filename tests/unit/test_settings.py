"""Settings: env prefix, .env, nested permissions, validation, and a secret kept secret."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from objectstore_s3 import InvalidSettingError, ObjectStore, ObjectStoreSettings, StoragePermissions
from objectstore_s3.settings import DAY_SECONDS, MAX_PART_BYTES, YEAR_SECONDS

SECRET = "s3cr3t-VALUE-never-shown"


def test_defaults_match_the_spec() -> None:
    settings = ObjectStoreSettings()
    assert settings.endpoint_url == "local"
    assert settings.storage_limit_bytes == 10737418240
    assert settings.storage_file_count == 10000
    assert settings.permissions == StoragePermissions(read=True, write=True, delete=True)
    assert settings.persistence_interval_seconds == 0
    assert settings.mode == "backtest"


def test_environment_with_prefix_and_nested_permissions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJECTSTORE_BUCKET", "algo-store")
    monkeypatch.setenv("OBJECTSTORE_ORGANIZATION_ID", "org-7")
    monkeypatch.setenv("OBJECTSTORE_PROJECT_ID", "12345")
    monkeypatch.setenv("OBJECTSTORE_PERMISSIONS__WRITE", "false")
    monkeypatch.setenv("OBJECTSTORE_MODE", "research")
    settings = ObjectStoreSettings()
    assert settings.bucket == "algo-store"
    assert settings.organization_id == "org-7"
    assert settings.project_id == 12345
    assert settings.permissions.write is False
    assert settings.permissions.read is True
    assert settings.mode == "research"


def test_dotenv_file_is_read() -> None:
    Path(".env").write_text("OBJECTSTORE_BUCKET=from-dotenv\nOBJECTSTORE_PREFIX=/team/x/\n")
    settings = ObjectStoreSettings()
    assert settings.bucket == "from-dotenv"
    assert settings.prefix == "team/x"


def test_project_id_may_be_a_string() -> None:
    assert ObjectStoreSettings(project_id="alpha-1").project_id == "alpha-1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bucket", "Not_A_Bucket"),
        ("bucket", "ab"),
        ("endpoint_url", "ftp://x"),
        ("organization_id", "../other"),
        ("organization_id", ".objectstore"),
        ("prefix", "a/../b"),
        ("mode", "paper"),
        ("cache_size_limit", -1),
        ("max_attempts", 0),
        ("persistence_interval_seconds", -5),
    ],
)
def test_invalid_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidSettingError) as caught:
        ObjectStoreSettings(**{field: value})
    assert field in str(caught.value)


@pytest.mark.parametrize(
    "field",
    [
        "connect_timeout_seconds",
        "read_timeout_seconds",
        "persistence_interval_seconds",
        "cache_max_age_seconds",
    ],
)
@pytest.mark.parametrize("value", [float("inf"), "inf", float("nan"), "NaN", 1e12])
def test_settings_that_make_no_sense_infinite_are_bounded(field: str, value: object) -> None:
    """Issue 18 break 9: read_timeout_seconds=inf was accepted, and every save then failed
    as "may or may not have been applied" for a request never sent. Infinity, NaN and
    values past the documented bound (a day; a year for the cache's max age) are refused
    at construction, naming the field."""
    with pytest.raises(InvalidSettingError) as caught:
        ObjectStoreSettings(**{field: value})
    assert field in str(caught.value)
    assert "finite number" in str(caught.value) or "less than or equal" in str(caught.value)


def test_the_bounds_themselves_are_accepted() -> None:
    """Issue 18 break 9: the bounds are far beyond any real use, and themselves valid."""
    settings = ObjectStoreSettings(
        connect_timeout_seconds=DAY_SECONDS,
        read_timeout_seconds=DAY_SECONDS,
        persistence_interval_seconds=DAY_SECONDS,
        cache_max_age_seconds=YEAR_SECONDS,
        multipart_threshold_bytes=MAX_PART_BYTES,
        multipart_chunksize_bytes=MAX_PART_BYTES,
    )
    assert settings.read_timeout_seconds == DAY_SECONDS


@pytest.mark.parametrize("field", ["multipart_threshold_bytes", "multipart_chunksize_bytes"])
def test_parts_larger_than_s3_takes_are_refused(field: str) -> None:
    """Issue 18 break 9: S3 takes at most 5 GiB in one PUT or one part."""
    with pytest.raises(InvalidSettingError, match=field):
        ObjectStoreSettings(**{field: MAX_PART_BYTES + 1})


def test_credentials_go_together() -> None:
    with pytest.raises(InvalidSettingError, match="access_key_id and secret_access_key"):
        ObjectStoreSettings(access_key_id="AKIA")


def test_secret_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ObjectStoreSettings(
        endpoint_url="http://127.0.0.1:9",
        access_key_id="AKIA",
        secret_access_key=SECRET,
        max_attempts=1,
        connect_timeout_seconds=0.5,
    )
    store = ObjectStore(settings)
    shown = [repr(settings), str(settings), repr(store), settings.model_dump_json()]
    with pytest.raises(Exception) as caught:  # noqa: PT011  (any failure; its text is checked)
        store.save("k", "v")
    shown += [str(caught.value), repr(caught.value), caplog.text]
    for text in shown:
        assert SECRET not in text
    assert settings.secret_access_key is not None
    assert settings.secret_access_key.get_secret_value() == SECRET


def test_secret_hidden_from_validation_errors() -> None:
    with pytest.raises(InvalidSettingError) as caught:
        ObjectStoreSettings(secret_access_key=SECRET, bucket="BAD")
    assert SECRET not in str(caught.value)


# -- path settings (issue 13: copying .env.example to .env must work) ---------------------

ROOT = Path(__file__).resolve().parents[2]


def test_path_settings_expand_home_and_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATA", str(tmp_path / "data"))
    settings = ObjectStoreSettings(
        cache_dir="~/cache", local_root="$DATA/local", server_dir="${DATA}/server"
    )
    assert settings.cache_dir == tmp_path / "home" / "cache"
    assert settings.local_root == tmp_path / "data" / "local"
    assert settings.server_dir == tmp_path / "data" / "server"


def test_relative_path_settings_become_absolute() -> None:
    settings = ObjectStoreSettings(local_root="here")
    assert settings.local_root == Path.cwd() / "here"


def test_unset_variable_in_a_path_names_it_and_the_field() -> None:
    with pytest.raises(InvalidSettingError, match="NOT_SET_FOR_THIS_TEST is not set") as caught:
        ObjectStoreSettings(cache_dir="$NOT_SET_FOR_THIS_TEST/cache")
    assert "cache_dir" in str(caught.value)


def test_env_example_copied_to_dotenv_expands_its_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    shutil.copy(ROOT / ".env.example", ".env")  # the working directory is fresh (conftest)
    settings = ObjectStoreSettings()
    assert settings.cache_dir == home / ".cache" / "objectstore-s3"
    assert settings.local_root == home / ".local" / "share" / "objectstore-s3"
    assert settings.server_dir == home / ".local" / "share" / "objectstore-s3" / ".server"
    assert settings.endpoint_url == "local"
    assert settings.access_key_id is None


def test_server_dir_is_the_users_whatever_the_local_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    node_a = ObjectStoreSettings(local_root=tmp_path / "a", cache_dir=tmp_path / "ca")
    node_b = ObjectStoreSettings(local_root=tmp_path / "b", cache_dir=tmp_path / "cb")
    expected = tmp_path / "home" / ".local" / "share" / "objectstore-s3" / ".server"
    assert node_a.server_dir == node_b.server_dir == expected
