"""Settings: pydantic-settings with the `OBJECTSTORE_` env prefix and `.env` support.

Every field is documented in `.env.example`. Validation happens at construction, so a
bad value fails early with `InvalidSettingError` naming the setting and its variable;
inputs are hidden from validation messages so a mistyped secret is never echoed. An
`OBJECTSTORE_*` variable that names no setting (a typo) is logged as a warning.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from .errors import InvalidSettingError
from .keys import ORGANIZATION_ID_PATTERN, normalize_prefix

__all__ = ["Mode", "ObjectStoreSettings", "StoragePermissions"]

Mode = Literal["backtest", "live", "research"]
QuotaEnforcement = Literal["exact", "best_effort", "off"]
Transport = Literal["boto3", "obstore"]

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
MiB = 1024 * 1024
GiB = 1024 * MiB
# Upper bounds where infinity makes no sense: no user means a timeout or a write-behind
# interval of more than a day, and an infinite one is a request that never ends (or a
# save "maybe applied" that was never sent). S3 takes at most 5 GiB in one PUT or part.
DAY_SECONDS = 86400.0
YEAR_SECONDS = 365 * DAY_SECONDS
MAX_PART_BYTES = 5 * GiB
ENV_PREFIX = "OBJECTSTORE_"
_FIX = (
    "Fix it where it is set: the ObjectStoreSettings(...) argument, the environment "
    "variable, or .env in the working directory (.env.example documents each setting)."
)
_log = logging.getLogger("objectstore_s3")
_warned: set[str] = set()  # unknown variables already reported by this process


class StoragePermissions(BaseModel):
    """What this user may do with the organization's Object Store (LEAN's controls)."""

    model_config = ConfigDict(frozen=True)

    read: bool = True
    write: bool = True
    delete: bool = True


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "objectstore-s3"


def _default_local_root() -> Path:
    return Path.home() / ".local" / "share" / "objectstore-s3"


def _default_server_dir() -> Path:
    # The user's data folder, not local_root: every store of the user shares one server.
    # A dot name, so that no organization's local folder (ids start with a letter or digit)
    # can be this folder under the default local_root.
    return _default_local_root() / ".server"


_UNSET_VARIABLE = re.compile(r"\$(\w+|\{[^}]*\})")


def expand_path(value: object) -> object:
    """`~` and `$VAR`/`${VAR}` expanded, as a shell would (so a copied `.env` works), and
    made absolute (a later chdir does not move it); a reference to an unset variable is an
    error rather than a literal folder name."""
    if not isinstance(value, str | Path):
        return value
    if not str(value).strip():
        raise ValueError("must be a folder, not empty")
    expanded = os.path.expanduser(os.path.expandvars(str(value)))
    unset = _UNSET_VARIABLE.search(expanded)
    if unset is not None:
        raise ValueError(f"environment variable {unset.group(1).strip('{}')} is not set")
    return Path(expanded).absolute()


class ObjectStoreSettings(BaseSettings):
    """Where the Object Store lives and how it behaves; read from env / `.env` by default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,
        frozen=True,
    )

    # Where: endpoint, bucket, and the organization's place in it.
    endpoint_url: str = Field(
        "local", description="'local' (embedded SeaweedFS), 'aws', or an http(s) URL"
    )
    bucket: str = "objectstore"
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    prefix: str = ""
    organization_id: str = "default"
    project_id: int | str = 0

    # Node-local state.
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    cache_size_limit: int = Field(1024 * MiB, ge=0)
    cache_revalidate: bool = False
    cache_max_age_seconds: float | None = Field(None, ge=0, le=YEAR_SECONDS, allow_inf_nan=False)
    local_root: Path = Field(default_factory=_default_local_root)
    # The embedded server's data and state (endpoint_url=local), shared by every store.
    server_dir: Path = Field(default_factory=_default_server_dir)

    # Quotas and permissions.
    storage_limit_bytes: int = Field(10737418240, ge=0)
    storage_file_count: int = Field(10000, ge=0)
    permissions: StoragePermissions = Field(default_factory=StoragePermissions)

    # Behaviour.
    persistence_interval_seconds: float = Field(0.0, ge=0, le=DAY_SECONDS, allow_inf_nan=False)
    # The journal survives a killed process without fsync (the OS keeps the written pages);
    # fsync also survives a power loss or an OS crash, at about a disk flush per save.
    journal_fsync: bool = False
    mode: Mode = "backtest"
    # exact: check once per bucket that the server honours conditional writes (refuse
    # the first write if not); best_effort: account without that guarantee; off: none.
    quota_enforcement: QuotaEnforcement = "exact"
    # On a bucket with versioning: noncurrent versions kept per key (at most 100, as AWS's
    # lifecycle rule, infra/lifecycle/, allows), and for how many days after they became
    # noncurrent (None: no bound); the oldest beyond are pruned after a save of the key and
    # by reconcile_usage().
    keep_versions: int | None = Field(None, ge=0, le=100)
    keep_versions_days: float | None = Field(None, gt=0, le=36500, allow_inf_nan=False)

    # Network: bounded so that an unreachable endpoint fails in seconds.
    # boto3 (default) or obstore (the `fast` extra: Rust HTTP, ~2x less time per request).
    transport: Transport = "boto3"
    connect_timeout_seconds: float = Field(3.0, gt=0, le=DAY_SECONDS, allow_inf_nan=False)
    read_timeout_seconds: float = Field(30.0, gt=0, le=DAY_SECONDS, allow_inf_nan=False)
    max_attempts: int = Field(3, ge=1, le=20)

    # Transfers (boto3's transfer manager) for get_file_path and large objects.
    multipart_threshold_bytes: int = Field(16 * MiB, ge=5 * MiB, le=MAX_PART_BYTES)
    multipart_chunksize_bytes: int = Field(16 * MiB, ge=5 * MiB, le=MAX_PART_BYTES)
    max_concurrency: int = Field(8, ge=1, le=64)
    # Iteration and read_many fetch up to max_concurrency values at once and stop
    # fetching ahead while this many bytes wait for the caller.
    read_ahead_bytes: int = Field(64 * MiB, ge=0)

    def __init__(self, **values: Any) -> None:
        """As pydantic-settings reads them (arguments, environment, `.env`); a value a
        setting cannot take raises `InvalidSettingError`, an `ObjectStoreError`."""
        _warn_unknown_variables(values.get("_env_file", ".env"))
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _invalid(exc) from None  # pydantic's frames say nothing to a user
        except SettingsError as exc:  # a variable that is not even parseable (JSON)
            named = re.search(r'field "(\w+)"', str(exc))
            where = f"{named[1]} ({variable_of((named[1],))}): " if named else ""
            raise InvalidSettingError(f"Invalid setting: {where}{exc}. {_FIX}") from None

    @field_validator("cache_dir", "local_root", "server_dir", mode="before")
    @classmethod
    def _expand_path(cls, value: object) -> object:
        return expand_path(value)

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        value = value.strip()
        if value in ("local", "aws") or re.match(r"^https?://[^\s/]+", value):
            return value.rstrip("/")
        raise ValueError(
            "must be 'local', 'aws', or an http(s):// URL such as http://127.0.0.1:9000"
        )

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        if not _BUCKET_NAME.match(value) or _IP_ADDRESS.match(value) or ".." in value:
            raise ValueError(
                "must be a DNS-valid bucket name: 3-63 lowercase letters, digits, '-' or '.'"
            )
        return value

    @field_validator("organization_id")
    @classmethod
    def _check_organization(cls, value: str) -> str:
        if not re.match(ORGANIZATION_ID_PATTERN, value):
            raise ValueError(
                "must start with a letter or digit and hold only letters, digits, '_' and '-'"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        return normalize_prefix(value)

    @field_validator("project_id")
    @classmethod
    def _check_project(cls, value: int | str) -> int | str:
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> ObjectStoreSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "access_key_id and secret_access_key go together: set both, or neither to use "
                "boto3's credential chain (env, profile, instance role)"
            )
        return self


def _variables() -> dict[str, str]:
    """Every `OBJECTSTORE_*` variable a setting reads, by name (upper case): one per field,
    and one per sub-field of a nested one (`OBJECTSTORE_PERMISSIONS__WRITE`)."""
    names = {}
    for name, field in ObjectStoreSettings.model_fields.items():
        names[ENV_PREFIX + name.upper()] = name
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            for sub in nested.model_fields:
                names[f"{ENV_PREFIX}{name}__{sub}".upper()] = f"{name}.{sub}"
    return names


def variable_of(location: tuple[int | str, ...]) -> str:
    """The environment variable of a setting's path (`permissions.write`)."""
    return ENV_PREFIX + "__".join(str(part) for part in location).upper()


def _invalid(exc: ValidationError) -> InvalidSettingError:
    problems = []
    for detail in exc.errors():
        message = str(detail["msg"]).removeprefix("Value error, ")
        location = detail["loc"][:2] if detail["loc"][:1] == ("permissions",) else detail["loc"][:1]
        if location:  # else a check across settings, whose message names them
            setting = ".".join(str(part) for part in location)
            message = f"{setting} ({variable_of(location)}): {message}"
        problems.append(message)
    return InvalidSettingError(f"Invalid setting: {'; '.join(problems)}. {_FIX}", exc.errors())


def _warn_unknown_variables(env_file: object) -> None:
    """Log (once per process each) the `OBJECTSTORE_*` variables of the environment and
    `.env` that no setting reads, with the closest setting's variable: a typo such as
    OBJECTSTORE_BUKET would otherwise be ignored without a word."""
    found = [name for name in os.environ if name.upper().startswith(ENV_PREFIX)]
    if isinstance(env_file, str | Path) and os.path.isfile(env_file):
        found += [name for name in dotenv_values(env_file) if name.upper().startswith(ENV_PREFIX)]
    unknown = [name for name in found if name not in _warned]
    if not unknown:
        return
    known = _variables()
    for name in unknown:
        _warned.add(name)
        if name.upper() in known:
            continue
        # Compared without the prefix they all share, which would make anything close.
        suffixes = [variable.removeprefix(ENV_PREFIX) for variable in known]
        close = difflib.get_close_matches(name.upper().removeprefix(ENV_PREFIX), suffixes, n=1)
        hint = (
            f"did you mean {ENV_PREFIX}{close[0]}?"
            if close
            else "see .env.example for the settings"
        )
        _log.warning("%s names no setting and is ignored: %s", name, hint)
