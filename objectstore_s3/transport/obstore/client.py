"""The obstore client of the obstore transport: one `S3Store` per store, shared by every
scope of its backend, the retry loop every obstore request goes through, and the boto3
side for the few requests obstore cannot make.

obstore's own retries are off (`max_retries=0`): it re-sends a PUT after a 5xx (a 500
answered three times with `max_retries=2`), so a conditional write that landed but was
answered 5xx (a gateway giving up on a slow server) would come back 412 from obstore's
own retry, and the success would be reported as a failed precondition. (After a reset
that follows the request it does not retry: that surfaces as an error.) Ours are
boto3/client.py's: reads retry on any fault (the body is read inside the attempt, so nothing
partial is returned); after a write that may have landed, a 412 is checked with `verify`
(a HEAD comparing the ETag with the MD5 of what was sent), and an outcome that cannot be
told is `OutcomeUnknownError`.

Timeouts: `connect_timeout` and `read_timeout` are the settings'. obstore's read timeout
runs from the request's start to the first byte of the answer, not per socket write as
boto3's, so a large body on a slow link would time out while still being sent: bodies
over `SMALL_BODY` go through boto3 (the backend decides). The whole-request timeout
(30 s by default in obstore, which would cut long downloads) is lifted to a day; a
stalled request still fails after `read_timeout`.

obstore exposes no response headers, hence no `Date`: the server's clock is the boto3
side's, fed by its responses; with no observation yet, one HEAD of a key that does not
exist calibrates it (any answer, even a 404 or a 403, carries a Date), and every
`_REFRESH_SECONDS` a background HEAD re-checks it. A process that only reads never
creates the boto3 side (nor imports boto3) unless it has no explicit credentials.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from obstore.store import S3Store

from objectstore_s3.errors import ObjectStoreError
from objectstore_s3.transport.failures import Retries, Step, no_credentials
from objectstore_s3.transport.remote import RemoteConnection

from .errors import classify, translate

if TYPE_CHECKING:
    from obstore.store import S3CredentialProvider

    from objectstore_s3.settings import ObjectStoreSettings
    from objectstore_s3.transport.base import Endpoint
    from objectstore_s3.transport.boto3.backend import S3Backend

__all__ = ["APPLIED", "SMALL_BODY", "ObstoreConnection"]

T = TypeVar("T")
Hook = Callable[[str, str | None], None]

SMALL_BODY = 1024 * 1024  # request bodies up to this go through obstore (see above)
_WHOLE_REQUEST = timedelta(days=1)
_CLOCK_KEY = ".objectstore-clock"  # HEAD of a key that does not exist: a cheap Date
_REFRESH_SECONDS = 300.0  # re-check the server's clock this often (in the background)
_RECALIBRATE_AFTER_FAILURE = 30.0  # an unreachable server is not asked again sooner


class ObstoreConnection(RemoteConnection):
    """What every scope of one backend shares: the S3Store, the pool, the boto3 side."""

    def __init__(self, settings: ObjectStoreSettings, endpoint: Endpoint) -> None:
        super().__init__(settings, endpoint)
        url = endpoint.url
        location: dict[str, Any] = (
            {"endpoint": url, "virtual_hosted_style_request": False}
            if url
            # AWS: virtual-hosted addressing, except for dotted names, which do not match
            # the *.s3 TLS certificate (boto3's "auto" does the same).
            else {"virtual_hosted_style_request": "." not in settings.bucket}
        )
        self.store = S3Store(
            settings.bucket,
            region=settings.region,
            **location,
            client_options={
                "allow_http": bool(url and url.startswith("http://")),
                "connect_timeout": timedelta(seconds=settings.connect_timeout_seconds),
                "read_timeout": timedelta(seconds=settings.read_timeout_seconds),
                "timeout": _WHOLE_REQUEST,
            },
            retry_config={"max_retries": 0},  # the retries are ours (module docstring)
            credential_provider=_credentials(settings, endpoint, self.endpoint),
        )
        self.hooks: tuple[tuple[str, Hook], ...] = ()
        self._boto: S3Backend | None = None
        self._lock = threading.Lock()
        self._checked_at: float | None = None  # monotonic time of the last clock check
        self._checking = False
        self._clock_lock = threading.Lock()

    # -- the retry loop ------------------------------------------------------------------

    def call(
        self,
        operation: str,
        key: str,
        request: Callable[[], T],
        *,
        api: str | None,
        target: str | None,
        written: str | None = None,
        verify: Callable[[], bool] | None = None,
        retries: Retries | None = None,
    ) -> T:
        """Run one obstore request with bounded retries; every error leaves as one of ours.

        `api` and `target` (the S3 operation and bucket key) are for `on_request` hooks
        (`api` None: a call into obstore that sends no request).
        `written` marks a conditional write and holds the ETag its object would get: after
        an attempt that may have landed, a 412 is checked with `verify` (did the earlier
        attempt land?), and a final failure is `OutcomeUnknownError`.
        """
        # (`retries`: the caller's, to learn afterwards what the attempts left behind)
        retries = retries if retries is not None else Retries(self.attempts, written)
        for attempt in range(1, self.attempts + 1):
            if self.hooks and api is not None:
                self._notify(api, target)
            try:
                return request()
            except Exception as exc:
                step = retries.after(classify(exc), attempt)
                if step is Step.RETRY:
                    time.sleep(Retries.backoff(attempt))
                    continue
                if step is Step.VERIFY and verify is not None and verify():
                    applied: T = APPLIED
                    return applied
                raise retries.error(step, exc, self, operation, key, attempt, translate) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def on_request(self, prefix: str, callback: Hook) -> None:
        """Call `callback(operation, key)` before each request, boto3's side included."""
        with self._lock:
            self.hooks = (*self.hooks, (prefix, callback))
            boto = self._boto
        if boto is not None:
            boto.scoped(prefix).on_request(callback)

    def _notify(self, api: str, target: str | None) -> None:
        for prefix, callback in self.hooks:
            inside = target is not None and target.startswith(prefix)
            callback(api, target[len(prefix) :] if inside and target else None)

    # -- shared parts ----------------------------------------------------------------------

    @property
    def boto(self) -> S3Backend:
        """The boto3 transport on the same bucket (root scope), made on first use."""
        with self._lock:
            if self._boto is None:
                from objectstore_s3.transport.boto3.backend import S3Backend

                backend = S3Backend(self.settings, self.endpoint_spec)
                for prefix, callback in self.hooks:
                    backend.scoped(prefix).on_request(callback)
                self._boto = backend
            return self._boto

    def close(self) -> None:
        """Release the transfer threads and the boto3 side's (idempotent)."""
        super().close()
        with self._lock:
            boto = self._boto
        if boto is not None:
            boto.close()

    # -- the server's clock ----------------------------------------------------------------

    def known_time(self) -> tuple[float, float] | None:
        """The server's clock as far as already known (no request)."""
        boto = self._boto
        return boto.server_time() if boto is not None else None

    def server_time(self) -> tuple[float, float] | None:
        """Bounds of the server's clock now; the first call calibrates it (one HEAD)."""
        now = self.known_time()
        since = None if self._checked_at is None else time.monotonic() - self._checked_at
        if now is None:
            with self._clock_lock:  # one calibration at a time; the others wait for it
                now = self.known_time()
                since = None if self._checked_at is None else time.monotonic() - self._checked_at
                if now is None and (since is None or since >= _RECALIBRATE_AFTER_FAILURE):
                    self._check_clock()
                    now = self.known_time()
            return now  # None: asked moments ago and got no answer; callers cope with None
        if since is None or since > _REFRESH_SECONDS:
            self._check_clock_later()
        return now

    def _check_clock(self) -> None:
        self._checked_at = time.monotonic()
        # The answer's Date feeds the clock, whatever the answer: a denied HEAD still told
        # the time; an unreachable server did not (and is asked again later).
        with contextlib.suppress(ObjectStoreError):
            self.boto.head(_CLOCK_KEY)

    def _check_clock_later(self) -> None:
        with self._lock:
            if self._checking:
                return
            self._checking = True
            self._checked_at = time.monotonic()

        def check() -> None:
            try:
                self._check_clock()
            finally:
                self._checking = False

        threading.Thread(target=check, name="objectstore-clock", daemon=True).start()


def _credentials(
    settings: ObjectStoreSettings, endpoint: Endpoint, where: str
) -> S3CredentialProvider:
    """Explicit keys (the endpoint's, else the settings'), else boto3's chain.

    Explicit keys are handed over as a provider too: obstore's own key arguments would be
    combined with AWS_SESSION_TOKEN from the environment (a token of another account
    makes every request 403), where boto3 ignores the environment when given keys.
    """
    key_id, secret = endpoint.access_key_id, endpoint.secret_access_key
    if key_id is None and settings.access_key_id is not None:
        key_id = settings.access_key_id
        secret_value = settings.secret_access_key
        secret = secret_value.get_secret_value() if secret_value is not None else None
    if key_id is not None and secret is not None:
        static: Any = {
            "access_key_id": key_id,
            "secret_access_key": secret,
            "token": None,
            "expires_at": None,  # never expires: asked once
        }
        return lambda: static
    from obstore.auth.boto3 import Boto3CredentialProvider

    try:
        return Boto3CredentialProvider()
    except ValueError as exc:  # the chain found no credentials
        raise no_credentials(where) from exc


APPLIED: Any = object()  # `call` result: an earlier attempt of a conditional write landed
