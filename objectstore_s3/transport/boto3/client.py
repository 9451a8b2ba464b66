"""The boto3 client of the boto3 transport: one connection per store, shared by every
scope of its backend, with the retry loop every request goes through.

botocore's own retries are off (one attempt per call): ours retry reads on any fault,
including a body cut mid-way (the body is read inside the attempt, so nothing partial is
returned); a conditional write whose answer was lost is never blindly re-sent as if
nothing happened: if a later attempt gets 412, `verify` (a HEAD comparing the ETag with
the MD5 of what was sent) tells whether the earlier attempt landed, and if that cannot
be told the caller gets `OutcomeUnknownError`. Each response's Date feeds the clock.

botocore parses every timestamp (each entry of a listing, each Last-Modified header)
with dateutil's general parser, about 90 µs each: 40% of a listing's time. S3 sends
ISO 8601 in bodies and RFC 1123 in headers, which the standard library parses in a
microsecond; anything else still goes to botocore's parser.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.exceptions as bce
import botocore.utils
from botocore.config import Config

from objectstore_s3.errors import ObjectStoreError
from objectstore_s3.transport.failures import Retries, Step
from objectstore_s3.transport.remote import RemoteConnection

from .clock import ServerClock, parse_http_date
from .errors import classify, translate
from .raw_order import record_order

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from objectstore_s3.settings import ObjectStoreSettings
    from objectstore_s3.transport.base import Endpoint

__all__ = ["APPLIED", "S3Connection", "parse_timestamp"]

T = TypeVar("T")


class S3Connection(RemoteConnection):
    """What every scope of one backend shares: the client, the pool, the clock."""

    def __init__(self, settings: ObjectStoreSettings, endpoint: Endpoint) -> None:
        super().__init__(settings, endpoint)
        url = endpoint.url
        config = Config(
            region_name=settings.region,
            # One attempt per call: the retries are ours (see the module docstring).
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            max_pool_connections=max(16, settings.max_concurrency * 2),
            # S3-compatible servers (SeaweedFS, MinIO) want path-style addressing.
            s3={"addressing_style": "path" if url else "auto"},
            signature_version="s3v4",
            # Default CRC trailers are not understood by every S3-compatible server.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        key_id, secret = endpoint.access_key_id, endpoint.secret_access_key
        if key_id is None and settings.access_key_id is not None:
            key_id = settings.access_key_id
            secret = (
                settings.secret_access_key.get_secret_value()
                if settings.secret_access_key
                else None
            )
        session = boto3.session.Session()
        session._session.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=parse_timestamp
        )
        self.client: S3Client = session.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=config,
        )
        # Keeps the raw order of a version listing (botocore splits it in two lists).
        self.client.meta.events.register("after-call.s3.ListObjectVersions", record_order)
        self.clock = ServerClock()

    def call(
        self,
        operation: str,
        key: str,
        request: Callable[[], T],
        *,
        written: str | None = None,
        verify: Callable[[], bool] | None = None,
        retries: Retries | None = None,
    ) -> T:
        """Run one request with bounded retries; every error leaves as one of ours.

        `written` marks a conditional write and holds the ETag its object would get:
        after an attempt that may have landed, a 412 is checked with `verify` (did the
        earlier attempt land?), and a final failure is `OutcomeUnknownError`.
        """
        # (`retries`: the caller's, to learn afterwards what the attempts left behind)
        retries = retries if retries is not None else Retries(self.attempts, written)
        for attempt in range(1, self.attempts + 1):
            sent = time.monotonic()
            try:
                result = request()
            except Exception as exc:
                self._observe(getattr(exc, "response", None), sent)
                step = retries.after(classify(exc), attempt)
                if step is Step.RETRY:
                    time.sleep(Retries.backoff(attempt))
                    continue
                if step is Step.VERIFY and self._verified(verify):
                    applied: T = APPLIED
                    return applied
                raise retries.error(step, exc, self, operation, key, attempt, translate) from exc
            self._observe(result, sent)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def pages(
        self,
        operation: str,
        key: str,
        request: Callable[[dict[str, Any]], Any],
        next_page: Callable[[Any], dict[str, Any] | None],
    ) -> Iterator[Any]:
        """A paginated listing's pages, each one `call`: `request(marker)` asks for the
        page at a marker ({} first), `next_page(page)` says the next one's, None at the end."""
        marker: dict[str, Any] | None = {}
        while marker is not None:
            page = self.call(operation, key, lambda at=marker: request(at))  # type: ignore[misc]
            yield page
            marker = next_page(page)

    def close(self) -> None:
        """Release the transfer threads and the client's HTTP connections (botocore opens
        new ones if the connection is used again)."""
        super().close()
        self.client.close()

    def create_bucket(self) -> None:
        """Create the bucket unless it exists (already ours, or anyone's)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}

        def request() -> None:
            try:
                self.client.create_bucket(**kwargs)
            except bce.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        self.call("create bucket", self.bucket, request)

    @staticmethod
    def _verified(verify: Callable[[], bool] | None) -> bool:
        """Whether an earlier attempt is seen to have landed (a failed look: cannot tell)."""
        if verify is None:
            return False
        try:
            return verify()
        except ObjectStoreError:
            return False

    def _observe(self, response: object, sent: float) -> None:
        if isinstance(response, dict):
            headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            self.clock.observe(parse_http_date(headers.get("date")), sent, time.monotonic())


APPLIED: Any = object()  # `call` result: an earlier attempt of a conditional write landed


def parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, fast for what S3 sends (module docstring)."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)  # 2026-12-01T21:00:00.000Z (bodies)
        except ValueError:
            try:
                parsed = parsedate_to_datetime(value)  # Tue, 01 Dec 2026 21:00:00 GMT
            except (TypeError, ValueError, IndexError):
                return botocore.utils.parse_timestamp(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return botocore.utils.parse_timestamp(value)
