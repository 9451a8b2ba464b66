"""Key validation and normalization (pure; LEAN's accepted and rejected cases)."""

from __future__ import annotations

import pytest

from objectstore_s3.errors import InvalidKeyError
from objectstore_s3.keys import KeySpace, local_relative_path, normalize_key, normalize_prefix


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a/b/c", "a/b/c"),
        ("/a\\b/c", "a/b/c"),
        ("./a/b/c", "a/b/c"),
        ("./a/su-p_er\\pr##efi$x", "a/su-p_er/pr##efi$x"),
        ("a/super/prefix/ILove", "a/super/prefix/ILove"),
        ("model.v2.pkl", "model.v2.pkl"),
        ("2024.01/x.csv", "2024.01/x.csv"),
        ("abc/12 3/test", "abc/12 3/test"),
        ("k=v$1#2", "k=v$1#2"),
        ("12345/string_key", "12345/string_key"),
    ],
)
def test_accepted_keys_normalize(given: str, expected: str) -> None:
    assert normalize_key(given) == expected


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("../prefix/x", "'..'"),
        ("..\\prefix/x", "'..'"),
        ("a/../b", "'..'"),
        ("a\\..\\b", "'..'"),
        ("a?b", "'\\?'"),
        ("a*b", "'\\*'"),
        ("a<b>", "'<'"),
        ("a|b", "'\\|'"),
        ("a:b", "':'"),
        ('a"b', "'\"'"),
        ("a%b", "'%'"),
        ("a+b", "'\\+'"),
        ("naïve", "'ï'"),
        ("tab\there", "'\\\\t'"),
        ("", "empty"),
        ("...", "empty"),
        ("/", "empty"),
        ("a//b", "empty path segment"),
        ("a/", "end with '/'"),
        ("a/./b", "'.' segments"),
    ],
)
def test_rejected_keys_name_the_problem(key: str, reason: str) -> None:
    with pytest.raises(InvalidKeyError, match=reason) as caught:
        normalize_key(key)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("key", [None, 1, 1.5, b"a", ["a"], object()])
def test_non_str_keys_are_type_errors(key: object) -> None:
    with pytest.raises(TypeError, match="must be str"):
        normalize_key(key)


def test_keyspace_maps_under_prefix_and_organization() -> None:
    space = KeySpace("team", "org-1")
    assert space.root == "team/org-1/"
    assert KeySpace("", "org-1").root == "org-1/"
    assert space.is_key("a/b")
    assert not space.is_key("bad?name")
    assert not space.is_key(".secret")  # would normalize to another key: never listed


def test_internal_records_live_outside_every_organization() -> None:
    space = KeySpace("", "org-1")
    assert not space.internal_root.startswith(space.root)
    assert space.internal_root == ".objectstore/org-1/"
    assert KeySpace("p", "org-1").internal_root == "p/.objectstore/org-1/"


def test_bucket_key_length_limit() -> None:
    space = KeySpace("p" * 10, "org")
    space.check("k" * (1024 - len("pppppppppp/org/")))
    with pytest.raises(InvalidKeyError, match="1024 bytes"):
        space.check("k" * (1025 - len("pppppppppp/org/")))


def test_prefix_rules() -> None:
    assert normalize_prefix("/team/store/") == "team/store"
    assert normalize_prefix("") == ""
    with pytest.raises(InvalidKeyError):
        normalize_prefix("a/../b")
    with pytest.raises(InvalidKeyError):
        normalize_prefix("a\\b")


def test_local_paths_never_climb() -> None:
    assert str(local_relative_path("a/b")) == "a/b"
    for bad in ("/etc/passwd", "a/../../x"):
        with pytest.raises(InvalidKeyError):
            local_relative_path(bad)
