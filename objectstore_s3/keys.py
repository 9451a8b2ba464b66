"""Key validation, normalization and the mapping onto bucket keys. Pure: no I/O.

A user key is validated as given (so `..` cannot sneak in through a separator that
normalization would rewrite), then normalized the way LEAN does, then mapped to
`<prefix>/<organization_id>/<key>`. The store's own records live under
`<prefix>/.objectstore/`, which no organization id can spell (ids cannot start with a dot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from .errors import InvalidKeyError

MAX_BUCKET_KEY_BYTES = 1024
INTERNAL_ROOT = ".objectstore"

# Characters LEAN accepts, plus '.' inside names; '\' is accepted as a separator on input.
_ALLOWED_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 /\\_#-$=."
)
_ALLOWED = re.compile(r"[A-Za-z0-9 /\\_#\-$=.]*")
_SEPARATORS = re.compile(r"[/\\]")
ORGANIZATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"


def normalize_key(key: object) -> str:
    """Return the canonical form of a user key, or raise TypeError / InvalidKeyError."""
    if not isinstance(key, str):
        raise TypeError(
            f"Object Store keys must be str, not {type(key).__name__}; e.g. 'my-project/model'"
        )
    if ".." in _SEPARATORS.split(key):
        raise InvalidKeyError(f"Invalid key {key!r}: '..' segments are not allowed")
    if _ALLOWED.fullmatch(key) is None:
        bad = sorted({ch for ch in key if ch not in _ALLOWED_CHARS})
        shown = ", ".join(repr(ch) for ch in bad)
        raise InvalidKeyError(
            f"Invalid key {key!r}: character(s) {shown} are not allowed; use letters, digits, "
            "space and / _ # - $ = ."
        )
    # LEAN: TrimStart('.'), then TrimStart('/', '\\'), then '\\' -> '/'.
    normalized = key.lstrip(".").lstrip("/\\").replace("\\", "/")
    if not normalized:
        raise InvalidKeyError(f"Invalid key {key!r}: the key is empty")
    if normalized.endswith("/"):
        raise InvalidKeyError(f"Invalid key {key!r}: a key cannot end with '/'")
    segments = normalized.split("/")
    if "" in segments:
        raise InvalidKeyError(f"Invalid key {key!r}: empty path segment ('//')")
    if "." in segments:
        raise InvalidKeyError(f"Invalid key {key!r}: '.' segments are not allowed")
    if normalized.startswith("."):
        # LEAN strips dots and then slashes once, so '/.secret' would become '.secret':
        # a name that normalizes again to 'secret' and so could never be listed as itself.
        raise InvalidKeyError(
            f"Invalid key {key!r}: after normalization it starts with '.' ({normalized!r}); "
            "start the key with a letter, digit or one of _ # - $ ="
        )
    return normalized


def normalize_prefix(prefix: str) -> str:
    """Validate a bucket prefix (may be empty) with the key rules; strip outer slashes."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    normalized = normalize_key(stripped)
    if normalized != stripped:
        raise InvalidKeyError(f"Invalid prefix {prefix!r}: write it as {normalized!r}")
    return normalized


@dataclass(frozen=True)
class KeySpace:
    """Where one organization's keys and the store's own records live in the bucket."""

    prefix: str
    organization_id: str

    @property
    def root(self) -> str:
        """Bucket-key prefix of the organization's objects, ending in '/'."""
        return f"{self._join(self.organization_id)}/"

    @property
    def internal_root(self) -> str:
        """Bucket-key prefix of the store's own records for the organization (the usage
        ledger): outside `root`, since no organization id can start with a dot."""
        return f"{self._join(f'{INTERNAL_ROOT}/{self.organization_id}')}/"

    def check(self, key: str) -> None:
        """Refuse a normalized key whose bucket key would pass S3's length limit."""
        if len(self.root.encode("utf-8")) + len(key.encode("utf-8")) > MAX_BUCKET_KEY_BYTES:
            raise InvalidKeyError(
                f"Invalid key {key!r}: the bucket key would be longer than "
                f"{MAX_BUCKET_KEY_BYTES} bytes; use a shorter key"
            )

    @staticmethod
    def is_key(name: str) -> bool:
        """Whether an object name under `root` is a key this store would produce (objects
        other tools wrote with names we refuse are not listed, but they are counted)."""
        try:
            return normalize_key(name) == name
        except (InvalidKeyError, TypeError):
            return False

    def _join(self, tail: str) -> str:
        return f"{self.prefix}/{tail}" if self.prefix else tail


def local_relative_path(key: str) -> PurePosixPath:
    """Relative local path of a normalized key; never absolute, never climbing out."""
    path = PurePosixPath(key)
    if path.is_absolute() or any(part in ("", ".", "..") for part in path.parts):
        raise InvalidKeyError(f"Invalid key {key!r}: not a safe local path")
    return path
