"""The boto3 transport's timestamp parser: what S3 sends, parsed as botocore would."""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.utils
import pytest

from objectstore_s3.transport.boto3.client import parse_timestamp


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-01T21:00:00.000Z",  # listings
        "2026-12-01T21:00:00Z",
        "2026-12-01T21:00:00.123456+00:00",
        "Tue, 01 Dec 2026 21:00:00 GMT",  # Last-Modified headers
        1764622800,  # epoch seconds (other services)
        "1764622800",
    ],
)
def test_parses_like_botocore(value: object) -> None:
    parsed = parse_timestamp(value)
    assert parsed == botocore.utils.parse_timestamp(value)
    assert parsed.tzinfo is not None


def test_an_odd_format_still_goes_to_botocore() -> None:
    assert parse_timestamp("December 1, 2026 21:00 UTC") == datetime(2026, 12, 1, 21, tzinfo=UTC)
