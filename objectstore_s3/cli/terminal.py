"""What the command line says on the terminal: plain help with examples, one-line errors
and notes on stderr (with --json, one JSON object a line: `{"error": ...}`), exit codes
(a closed pipe is not an error), progress bars, and key checks before any I/O.

Typer's rich help labels flags `<bool>` and arguments `<str>`, and its usage errors are a
boxed panel; here help is click's plain layout (as `aws s3` and `mc` print theirs) and
every error is one line. Click's exceptions are recognised by class name, because typer
vendors its own copy of click in some versions and not in others.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from pydantic_core import ErrorDetails
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from objectstore_s3.errors import (
    InvalidKeyError,
    InvalidSettingError,
    KeyNotFoundError,
    ObjectStoreError,
)
from objectstore_s3.keys import normalize_key
from objectstore_s3.settings import ObjectStoreSettings

from .listing import BinarySpeedColumn

__all__ = [
    "FAILED",
    "USAGE",
    "Command",
    "Group",
    "JsonFlag",
    "command",
    "error",
    "examples",
    "fail",
    "install_log_lines",
    "listing_prefix",
    "log_lines",
    "normalized_key",
    "note",
    "progress_bar",
    "reported",
    "run",
    "settings_from",
]

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]
PROGRESS_THRESHOLD = 4 * 1024 * 1024
FAILED = 1  # the operation failed: missing key, quota, permission, unreachable
USAGE = 2  # usage error, invalid key, invalid settings
_FLAGS = {
    "organization_id": "--org",
    "bucket": "--bucket",
    "endpoint_url": "--endpoint-url",
    "prefix": "--prefix",
}


def _one_line(message: str) -> str:
    return " ".join(message.split())


class _Said:
    """How lines on stderr are written: text, or (a command run with --json) one JSON
    object a line, so a script reads every line of either stream as JSON."""

    json = False


def _say(kind: str, message: str, fields: dict[str, Any]) -> None:
    if _Said.json:
        typer.echo(json.dumps({kind: _one_line(message), **fields}), err=True)
    else:
        typer.echo(("" if kind == "note" else f"{kind}: ") + _one_line(message), err=True)


def error(message: str, **fields: Any) -> None:
    """One line on stderr, whatever the terminal width: `error: ...`, or with --json
    `{"error": "...", ...fields}` (e.g. the missing `key`)."""
    _say("error", message, fields)


def fail(message: str, code: int = FAILED, **fields: Any) -> NoReturn:
    error(message, **fields)
    raise typer.Exit(code)


def note(message: str) -> None:
    """A line for the user on stderr (stdout stays for data and --json)."""
    _say("note", message, {})


def examples(*lines: str) -> str:
    """A help epilog listing example command lines, kept as written (click's `\\b`)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def _argument_name(param: Any) -> str:
    name = str(param.metavar or (param.name or "").upper())
    return name + "..." if param.nargs != 1 else name


def _write_epilog(command: Any, formatter: Any) -> None:
    """The examples as written, flush left like the Options and Commands sections."""
    if command.epilog:
        formatter.write_paragraph()
        formatter.write(str(command.epilog).replace("\b\n", "") + "\n")


class Group(TyperGroup):
    """A command group whose examples line up with its other sections."""

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        _write_epilog(self, formatter)


class Command(TyperCommand):
    """A command whose help names arguments plainly: `put KEY [FILE]`, no `<str>` labels."""

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        _write_epilog(self, formatter)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        params = self.get_params(ctx)
        arguments = [
            (_argument_name(param), getattr(param, "help", None) or "")
            for param in params
            if param.param_type_name == "argument"
        ]
        options = [
            record
            for param in params
            if param.param_type_name == "option" and (record := param.get_help_record(ctx))
        ]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def command(
    group: typer.Typer, name: str, *example_lines: str, **options: Any
) -> Callable[[CommandFunctionType], CommandFunctionType]:
    """`group.command(name, ...)` as every command of ours is: a `Command`, its help
    ending with example command lines."""
    return group.command(name, cls=Command, epilog=examples(*example_lines), **options)


class _LogLines(logging.Handler):
    """The library's warnings and errors as one line each on stderr, and a count of the
    errors (so a refusal the store has logged is not said twice)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors += 1
            error(record.getMessage())
        else:
            _say("warning", record.getMessage(), {})


log_lines = _LogLines()


def install_log_lines() -> None:
    logger = logging.getLogger("objectstore_s3")
    if log_lines not in logger.handlers:
        logger.addHandler(log_lines)
        logger.propagate = False


def _problem(detail: ErrorDetails, overrides: dict[str, Any]) -> str:
    """One settings problem, naming the field and where it came from."""
    location = [str(part) for part in detail["loc"]]
    message = str(detail["msg"]).removeprefix("Value error, ")
    if not location:
        return message  # a check across fields: its message names them
    field = ".".join(location)
    source = _FLAGS[field] if field in overrides and field in _FLAGS else None
    return f"{field} ({source or 'OBJECTSTORE_' + '__'.join(location).upper()}): {message}"


def settings_from(overrides: dict[str, Any]) -> ObjectStoreSettings:
    """The settings (environment, `.env`, flags); invalid ones are a usage error."""
    try:
        return ObjectStoreSettings(**overrides)
    except InvalidSettingError as exc:  # details: a flag's setting is named by its flag
        problems = [_problem(d, overrides) for d in exc.details]
        fail(
            "invalid settings: "
            + ("; ".join(problems) or str(exc).removeprefix("Invalid setting: ")),
            USAGE,
        )


@contextmanager
def reported(debug: bool) -> Iterator[None]:
    """The store's errors as one line on stderr: exit 2 for an invalid key, 1 otherwise."""
    try:
        yield
    except (ObjectStoreError, OSError) as exc:
        if debug or isinstance(exc, BrokenPipeError):  # `| head`: run() ends quietly
            raise
        if isinstance(exc, KeyNotFoundError):
            fail(f"no such key '{exc.key}' (see `objectstore-s3 ls`)", key=exc.key)
        fail(str(exc), USAGE if isinstance(exc, InvalidKeyError) else FAILED)


def normalized_key(key: str, debug: bool) -> str:
    """The key as the store spells it; an invalid key is a usage error, before any I/O."""
    with reported(debug):
        return normalize_key(key)


def listing_prefix(prefix: str, debug: bool) -> str:
    """A listing prefix under the key rules (LEAN's normalization; `..` refused)."""
    if ".." in re.split(r"[/\\]", prefix):
        normalized_key(prefix, debug)  # refuses it, naming it as typed
    body = prefix.rstrip("/\\")
    if not body.lstrip("./\\"):
        return ""  # "", "/" and "./" list everything
    return normalized_key(body, debug) + ("/" if body != prefix else "")


_stderr = Console(stderr=True, highlight=False)


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for transfers over a few MB, when stderr is a terminal."""
    if total < PROGRESS_THRESHOLD or not _stderr.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        BinarySpeedColumn(),
        TimeRemainingColumn(),
        console=_stderr,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.advance(task, done)


def _is(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _usage_message(exc: Any) -> str:
    text = _one_line(str(exc.format_message())).rstrip(".")
    text = re.sub(r"\.? Did you mean", "; did you mean", text)  # no ".;" after the name
    command = exc.ctx.command_path if getattr(exc, "ctx", None) else "objectstore-s3"
    return f"{text[:1].lower()}{text[1:]} (see `{command} --help`)"


def run(command: Any, argv: Sequence[str] | None = None) -> int:
    """Run the click command of the app; every way out is an exit code and at most one
    line on stderr (a traceback only with --debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _Said.json = "--json" in args[: args.index("--") if "--" in args else len(args)]
    try:
        result = command.main(args=args, prog_name="objectstore-s3", standalone_mode=False)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
    except BrokenPipeError:  # `objectstore-s3 ls | head -1`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SystemExit:
        # Click's own answer to a closed pipe: exit 1 after wrapping stdout; not an error.
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            return 0
        raise
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except Exception as exc:
        if _is(exc, "NoArgsIsHelpError"):  # a bare `objectstore-s3`: the help
            print(exc.format_message())  # type: ignore[attr-defined]
            return 0
        if _is(exc, "UsageError"):
            error(_usage_message(exc))
            return USAGE
        if _is(exc, "Abort"):
            error("interrupted")
            return 130
        if _is(exc, "ClickException"):
            error(exc.format_message())  # type: ignore[attr-defined]
            return int(exc.exit_code)  # type: ignore[attr-defined]
        if "--debug" in args:
            raise
        error(f"unexpected {type(exc).__name__}: {exc} (--debug shows the traceback)")
        return FAILED
    return result if isinstance(result, int) else 0
