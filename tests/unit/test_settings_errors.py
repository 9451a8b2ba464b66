"""Issue 22 point 7: a bad setting is our own error naming the setting and its variable,
and an `OBJECTSTORE_*` variable that names no setting is reported with the closest one."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytest

from objectstore_s3 import InvalidSettingError, ObjectStore, ObjectStoreError, ObjectStoreSettings
from objectstore_s3 import settings as settings_module


@pytest.fixture(autouse=True)
def nothing_reported_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each unknown variable is reported once per process: start each test afresh."""
    monkeypatch.setattr(settings_module, "_warned", set())


def test_a_bad_value_names_the_setting_its_variable_and_the_way_out() -> None:
    with pytest.raises(InvalidSettingError) as caught:
        ObjectStoreSettings(max_attempts=0)
    error = caught.value
    assert isinstance(error, ObjectStoreError)
    assert isinstance(error, ValueError)
    message = str(error)
    assert "max_attempts (OBJECTSTORE_MAX_ATTEMPTS)" in message
    assert "greater than or equal to 1" in message
    assert ".env" in message  # where to fix it
    assert error.details[0]["loc"] == ("max_attempts",)


def test_a_bad_variable_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJECTSTORE_PERMISSIONS__WRITE", "maybe")
    monkeypatch.setenv("OBJECTSTORE_BUCKET", "Not_Valid")
    with pytest.raises(InvalidSettingError) as caught:
        ObjectStore()
    message = str(caught.value)
    assert "permissions.write (OBJECTSTORE_PERMISSIONS__WRITE)" in message
    assert "bucket (OBJECTSTORE_BUCKET): must be a DNS-valid bucket name" in message


def test_an_unparseable_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJECTSTORE_PERMISSIONS", "{not json")
    with pytest.raises(InvalidSettingError, match=r"permissions \(OBJECTSTORE_PERMISSIONS\)"):
        ObjectStoreSettings()


def test_the_traceback_shows_no_pydantic_internals() -> None:
    with pytest.raises(InvalidSettingError) as caught:
        ObjectStoreSettings(bucket="BAD")
    shown = "".join(traceback.format_exception(caught.value))
    assert "site-packages" not in shown  # no frame of pydantic's
    assert "ValidationError" not in shown
    assert "During handling" not in shown
    assert len(shown.splitlines()) < 10


def test_a_variable_naming_no_setting_is_reported_with_the_closest(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OBJECTSTORE_BUKET", "algo-store")
    monkeypatch.setenv("OBJECTSTORE_PERMISSIONS__WRTE", "false")
    monkeypatch.setenv("OBJECTSTORE_PERMISSIONS__WRITE", "false")  # a real one: no word
    with caplog.at_level(logging.WARNING, logger="objectstore_s3"):
        settings = ObjectStoreSettings()
        ObjectStoreSettings()  # once per process, not once per store
    assert settings.bucket == "objectstore"  # ignored, as the warning says
    warnings = [r.getMessage() for r in caplog.records if r.name == "objectstore_s3"]
    assert warnings == [
        "OBJECTSTORE_BUKET names no setting and is ignored: did you mean OBJECTSTORE_BUCKET?",
        "OBJECTSTORE_PERMISSIONS__WRTE names no setting and is ignored: "
        "did you mean OBJECTSTORE_PERMISSIONS__WRITE?",
    ]


def test_a_dotenv_variable_naming_no_setting_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    Path(".env").write_text("OBJECTSTORE_ENDPOINT=http://127.0.0.1:9000\nOTHER_TOOL=x\n")
    with caplog.at_level(logging.WARNING, logger="objectstore_s3"):
        ObjectStoreSettings()
    assert caplog.messages == [
        "OBJECTSTORE_ENDPOINT names no setting and is ignored: "
        "did you mean OBJECTSTORE_ENDPOINT_URL?"
    ]


def test_a_name_far_from_every_setting_points_at_the_documentation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OBJECTSTORE_ZZZZZZZZZZZZ", "1")
    with caplog.at_level(logging.WARNING, logger="objectstore_s3"):
        ObjectStoreSettings()
    assert caplog.messages == [
        "OBJECTSTORE_ZZZZZZZZZZZZ names no setting and is ignored: "
        "see .env.example for the settings"
    ]
