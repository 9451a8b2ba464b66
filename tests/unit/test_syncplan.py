"""What `sync` transfers and deletes, from two listings (cli/syncplan.py)."""

from __future__ import annotations

import hashlib

from objectstore_s3.cli.syncplan import Entry, differs, is_md5, plan

CONTENT = b"the model"
MD5 = hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()
MULTIPART = "0123456789abcdef0123456789abcdef-3"


def never(name: str) -> str:
    raise AssertionError(f"no digest needed for {name}")


def test_is_md5_knows_single_part_etags_from_multipart_ones() -> None:
    assert is_md5(MD5)
    assert is_md5(f'"{MD5}"')
    assert not is_md5(MULTIPART)
    assert not is_md5(None)
    assert not is_md5("pending")


def test_missing_names_are_transferred_and_extra_ones_deleted_only_when_asked() -> None:
    source = {"a": Entry(1), "b/c": Entry(2)}
    target = {"a": Entry(1, MD5), "old": Entry(3, MD5)}
    kept = plan(source, target, delete=False, digest=lambda name: MD5)
    assert kept.transfer == ("b/c",)
    assert kept.delete == ()
    assert kept.unchanged == 1
    removed = plan(source, target, delete=True, digest=lambda name: MD5)
    assert removed.delete == ("old",)


def test_other_size_is_transferred_without_reading_the_file() -> None:
    assert differs("a", Entry(10, None, 5.0), Entry(11, MD5, 100.0), never)


def test_same_size_single_part_compares_the_md5_whatever_the_times() -> None:
    older_local_same = Entry(len(CONTENT), None, 1.0)
    newer_local_same = Entry(len(CONTENT), None, 10_000.0)
    remote = Entry(len(CONTENT), f'"{MD5}"', 5.0)
    assert not differs("a", older_local_same, remote, lambda name: MD5)
    assert not differs("a", newer_local_same, remote, lambda name: MD5)
    assert differs("a", older_local_same, remote, lambda name: "0" * 32)
    assert not differs("a", remote, older_local_same, lambda name: MD5.upper())  # either side


def test_multipart_etag_falls_back_to_the_newer_source() -> None:
    remote = Entry(100, MULTIPART, 1_000.0)
    assert differs("a", Entry(100, None, 2_000.0), remote, never)  # the local file is newer
    assert not differs("a", Entry(100, None, 999.0), remote, never)  # uploaded after it
    assert not differs("a", Entry(100, None, 1_000.5), remote, never)  # S3's whole seconds
    assert not differs("a", remote, Entry(100, None, 1_000.0), never)  # downloaded with its time
    assert not differs("a", Entry(100, None, None), remote, never)  # nothing better to go by


def test_the_same_object_on_both_sides_is_unchanged() -> None:
    assert not differs("a", Entry(5, MULTIPART, 9.0), Entry(5, MULTIPART, 1.0), never)


def test_the_plan_is_sorted_and_counts_unchanged_names() -> None:
    source = {name: Entry(1, None, 1.0) for name in ("z", "m", "a")}
    found = plan(source, {"m": Entry(1, MD5, 2.0)}, delete=True, digest=lambda name: MD5)
    assert found.transfer == ("a", "z")
    assert found.unchanged == 1
