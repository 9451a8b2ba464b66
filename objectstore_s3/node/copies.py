"""Server-side copies, conditional and quota-counted as saves are: restoring an earlier
version of a key, and copying one key onto another.

A restore copies the version onto its own key with the precondition of the key's current
version as the bucket lists it (If-Match its ETag, or If-None-Match `*` when the key is
deleted: a restore undeletes it), so a newer write made meanwhile by anyone is never
overwritten: the restore fails with PreconditionFailedError instead. A copy writes its
destination as a save would (the precondition this node's view implies, retried over a
rival). Both are written through in either mode and go through the committer, so the
quota counts them exactly; where the server ignores preconditions on CopyObject (the
capability probe says), the value is fetched and PUT with them instead. Afterwards the
key's cache entry and local file follow, as after a save.
"""

from __future__ import annotations

from collections.abc import Callable

from objectstore_s3.errors import (
    KeyNotFoundError,
    LocalPathClashError,
    PreconditionFailedError,
    VersioningNotEnabledError,
)
from objectstore_s3.transport.base import Base, ObjectInfo, VersionInfo

from .writer import Writer

__all__ = ["Copies"]

Send = Callable[[dict[str, str]], ObjectInfo]


class Copies:
    """Restores and copies, made through the writer's locks, committer and cache."""

    def __init__(self, writer: Writer, *, conditional_copy: Callable[[], bool]) -> None:
        self._writer = writer
        self._conditional_copy = conditional_copy  # probed on first use

    def history(self, key: str) -> list[VersionInfo]:
        """The key's versions, newest first, after this node's pending work on it."""
        self._writer.settle(key)
        return self._writer.view.versions.history(key)

    def restore(self, key: str, version_id: str) -> ObjectInfo:
        """Make `version_id` the key's current value again (see the module's notes)."""
        w = self._writer
        versions = w.view.versions
        if not versions.versioned():
            raise _not_versioned(key, w.backend.name)
        self._writer.settle(key)
        with w.locked(key), w.files.key_lock(key):
            found = versions.history(key)
            target = _version(key, version_id, found)
            if target.latest:  # the current value already: nothing to write
                return ObjectInfo(key, target.size, target.etag or "", target.last_modified)
            now = next((item for item in found if item.latest), None)
            if now is None or now.deleted or now.etag is None:
                base = Base.absent()
            else:
                base = Base(now.etag, now.size, True)
            body = versions.cached(key, version_id)
            try:
                info = self._commit(
                    key, key, version_id, target.size, base, body, strict=True, expected=target.etag
                )
            except PreconditionFailedError as exc:
                w.cache.invalidate(key)  # the key changed: what this node holds is stale
                raise _overtaken(key, version_id, exc) from None
            self._follow(key, info, body)
            return info

    def copy(self, source: str, key: str) -> ObjectInfo:
        """Copy the current value of `source` (this node's pending save of it included)
        onto `key`, as a save of `key` would write it."""
        w = self._writer
        self._writer.settle(source)
        found = w.backend.head(source)
        if found is None:
            raise KeyNotFoundError(source)
        cached = w.cache.get(source)
        body = cached.body if cached is not None and cached.etag == found.etag else None
        with w.locked(key), w.files.key_lock(key):
            base = w.view.base(key)
            # The version the HEAD saw, where the bucket names one: the size counted is
            # then exactly what is copied.
            info = self._commit(
                source, key, found.version_id, found.size, base, body, expected=found.etag
            )
            self._follow(key, info, body)
            return info

    def _commit(
        self,
        source: str,
        key: str,
        version_id: str | None,
        size: int,
        base: Base,
        body: bytes | None,
        *,
        strict: bool = False,
        expected: str | None = None,
    ) -> ObjectInfo:
        """Write the copy through the committer: one conditional send per attempt."""
        backend = self._writer.backend
        if not self._conditional_copy():
            if body is None:
                data = backend.get(source, version_id=version_id)
                assert data is not None  # no If-None-Match was sent
                body = data.body
            value, size = body, len(body)

            def send(condition: dict[str, str]) -> ObjectInfo:
                return backend.put(key, value, **condition)

        else:

            def send(condition: dict[str, str]) -> ObjectInfo:
                return backend.copy(source, key, version_id=version_id, **condition)

        result = self._writer.committer.write(
            key, size, base, send, yields=None, held=None, expected=expected, strict=strict
        )
        assert isinstance(result, ObjectInfo)  # nothing yields without `yields`
        return result

    def _follow(self, key: str, info: ObjectInfo, body: bytes | None) -> None:
        """The key's cache entry and local file follow the copy, as after a save; what
        was pending for the key is replaced by it."""
        w = self._writer
        with w.accepting(key):
            try:
                if body is not None:
                    w.after_put(key, body, info, accepted=False)
                else:
                    w.cache.invalidate(key)
                    self._refresh_file(key)
            except BaseException:
                w.cache.invalidate(key)
                raise
            w.supersede_pending(key)

    def _refresh_file(self, key: str) -> None:
        w = self._writer
        if not w.states.is_registered(key):
            return
        try:
            w.files.overwrite(key, lambda target: w.backend.download(key, target))
        except (LocalPathClashError, KeyNotFoundError):
            # Another key's folder is there now, or the key was deleted meanwhile: the
            # key reads from the bucket instead of a file it can no longer have.
            w.states.unregister(key)


def _version(key: str, version_id: str, found: list[VersionInfo]) -> VersionInfo:
    """The version to restore, or a clear error when it cannot be restored."""
    for item in found:
        if item.version_id != version_id:
            continue
        if item.deleted:
            raise KeyNotFoundError(
                key,
                f"Version '{version_id}' of '{key}' is a deletion (a delete marker), not a "
                "value: there is nothing to restore from it. Restore the version before it "
                "(store.history(key) lists them); that also undeletes the key.",
            )
        return item
    raise KeyNotFoundError(
        key,
        f"Version '{version_id}' of '{key}' does not exist (removed by a retention rule or "
        "by another node, or not a version of this key). store.history(key) lists the "
        "versions that remain.",
    )


def _overtaken(key: str, version_id: str, exc: PreconditionFailedError) -> PreconditionFailedError:
    now = exc.current_etag
    return PreconditionFailedError(
        f"Not restored: '{key}' changed while version '{version_id}' was being restored "
        f"(another writer; {'it is deleted now' if now is None else f'its ETag is now {now}'})"
        ", and nothing was overwritten. Check store.history(key), then restore again if "
        "that is still what you want.",
        key=key,
        current_etag=now,
    )


def _not_versioned(key: str, bucket: str) -> VersioningNotEnabledError:
    return VersioningNotEnabledError(
        f"Cannot restore '{key}': the bucket ({bucket}) keeps no versions (its versioning is "
        "off). Turn versioning on with `objectstore-s3 bucket versioning on` (or in the S3 "
        "console, or `aws s3api put-bucket-versioning --bucket BUCKET "
        "--versioning-configuration Status=Enabled`); earlier values are kept from then on."
    )
