"""A node's processes share one lease (quota/books.py, quota/nodeshelf.py): the books in
the node's local state, their file, members that die holding flight, and the lease in the
ledger as the node's processes come and go (SeaweedFS, real processes)."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore
from objectstore_s3.errors import UnsafeFolderError
from objectstore_s3.quota import LEDGER, Ledger, NodeShelf, Quota
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.conftest import SettingsFactory
from tests.support.helpers import ledger, listing
from tests.support.worker import spawn


def test_two_shelves_on_one_file_share_the_books(tmp_path: Path) -> None:
    path = tmp_path / "quota" / "node.books"
    first, second = NodeShelf(path), NodeShelf(path)
    with first.hold() as books:
        books.fly("a", 2, 200)
        lease = books.lease_id
    with second.hold() as books:
        assert (books.lease_id, books.members) == (lease, {"a": [2, 200]})
        books.fly("a", -2, -200)
    with first.hold() as books:
        assert books.members == {"a": [0, 0]}  # read again: the other shelf wrote
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_damaged_books_start_a_new_lease(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "quota" / "node.books"
    with NodeShelf(path).hold() as books:
        old = books.lease_id
    path.write_bytes(path.read_bytes()[:20])  # a machine that crashed mid-write
    with caplog.at_level(logging.WARNING, "objectstore_s3"), NodeShelf(path).hold() as books:
        assert books.lease_id != old
    assert "quota books" in caplog.text
    assert "new lease" in caplog.text
    with NodeShelf(path).hold() as books:
        assert books.lease_id != old  # and they were written whole again


def test_books_planted_by_a_link_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "quota"
    folder.mkdir(mode=0o700)
    (tmp_path / "elsewhere").write_bytes(b"{}")
    (folder / "node.books").symlink_to(tmp_path / "elsewhere")
    with (
        pytest.raises(UnsafeFolderError, match="symbolic link"),
        NodeShelf(folder / "node.books").hold(),
    ):
        pass


def test_a_member_of_another_process_is_alive_only_while_that_process_runs(
    tmp_path: Path,
) -> None:
    """A member holds a lock on a file of its own while its process lives: the kernel lets
    go of it when the process dies, whatever its PID means here (another container)."""
    path = tmp_path / "quota" / "node.books"
    shelf = NodeShelf(path)
    child = subprocess.Popen(
        [sys.executable, "-c", _JOIN_AND_WAIT, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        member = child.stdout.readline().strip()
        assert shelf.alive(member)  # it runs
    finally:
        child.communicate("", timeout=60)  # it exits
    assert not shelf.alive(member)
    assert not (tmp_path / "quota" / "node.books.members" / member).exists()  # cleaned up
    ours = shelf.member()
    assert shelf.alive(ours)
    assert NodeShelf(path).alive(ours)  # another shelf of this process sees it too
    shelf.gone(ours)
    assert not NodeShelf(path).alive(ours)  # abandoned, as a killed process's
    assert not shelf.alive("../../etc")  # not a member's name


_JOIN_AND_WAIT = """
import sys
from pathlib import Path
from objectstore_s3.quota import NodeShelf
shelf = NodeShelf(Path(sys.argv[1]))
print(shelf.member(), flush=True)
sys.stdin.read()
"""


# A process that joins the books, puts a write in flight, and dies without a word.
_JOIN_AND_DIE = """
import os, sys
from pathlib import Path
from objectstore_s3.quota import NodeShelf
shelf = NodeShelf(Path(sys.argv[1]))
member = shelf.member()
with shelf.hold() as books:
    books.fly(member, 1, 100)
print(member, flush=True)
os._exit(0)
"""


def test_a_member_that_died_mid_write_is_counted_as_a_maybe(tmp_path: Path) -> None:
    """A process killed with a write in flight leaves it in the node's books: the next
    ledger update of the node buries it, and its increase counts until its horizon (it may
    have been sent and may land), not as flight the lease reserves forever."""
    path = tmp_path / "quota" / "node.books"
    bucket = MemoryBucket()
    records = MemoryBackend(bucket, ".objectstore/org/")
    quota = Quota(records, MemoryBackend(bucket, "org/"), 10**9, 100, shelf=NodeShelf(path))
    with quota.transaction("k", files=1, size=5) as spend:
        spend.effect(1, 5)
    subprocess.run(
        [sys.executable, "-c", _JOIN_AND_DIE, str(path)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    quota.renew()
    state = Ledger.parse(records.get(LEDGER).body)  # type: ignore[union-attr]
    assert (state.files, state.bytes) == (2, 105)  # ours, and the dead member's maybe
    assert [entry[:2] for entry in state.maybes] == [(1, 100)]
    with NodeShelf(path).hold() as books:
        assert (books.account.flying_files, books.account.flying_bytes) == (0, 0)
        assert list(books.members) == [quota.book.member]


@pytest.mark.seaweedfs
def test_the_processes_of_a_node_share_one_lease(
    seaweed_settings: SettingsFactory, tmp_path: Path
) -> None:
    """Three processes on one node and one on another hold two leases, not four; killed,
    they leave them to the node's next process, which continues its node's lease and
    buries the dead members; the last to close gives the lease back."""
    node_a = seaweed_settings(cache_dir=tmp_path / "a", persistence_interval_seconds=0)
    node_b = node_a.model_copy(update={"cache_dir": tmp_path / "b"})
    workers = [spawn(node_a, "save-and-wait", f"a{index}", "5") for index in range(3)]
    workers.append(spawn(node_b, "save-and-wait", "b", "5"))
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "saved"
    with ObjectStore(node_a.model_copy(update={"cache_dir": tmp_path / "look"})) as look:
        assert len(ledger(look)["leases"]) == 2  # type: ignore[arg-type]
    for worker in workers:
        worker.kill()  # SIGKILL, as a machine's OOM killer would
        worker.communicate(timeout=30)
    with ObjectStore(node_a) as again:
        assert again.save("a-again", "v")
        own = again._node.parts.quota.lease_id
        assert own in ledger(again)["leases"]  # type: ignore[operator]  # the node's, continued
    with NodeShelf(_books_of(tmp_path / "a")).hold() as books:
        assert books.members == {}  # the dead were buried when the last one left
    with ObjectStore(node_a.model_copy(update={"cache_dir": tmp_path / "look2"})) as look:
        state = ledger(look)
        assert own not in state["leases"]  # type: ignore[operator]  # given back at close
        assert listing(look)[1] == 21


def _books_of(cache_dir: Path) -> Path:
    (books,) = (cache_dir / "quota").glob("*.books")
    return books
