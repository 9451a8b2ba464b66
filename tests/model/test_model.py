"""Model-based test: random sequences of operations on two nodes sharing one bucket, in
both write modes, each observation checked against the reference model (tests/support/model/).

Operations: save, save_json, update (a read-modify-write whose appended suffixes show
each update applied exactly once), read, contains_key, delete, keys, iteration,
get_file_path then writing the file, save(key), flush, clear, close-and-reopen, and
kill-and-replay.
Invariants: after every step the bucket never holds more than the ledger accounts for;
at rest the bucket equals the model and the ledger equals a listing. On the in-memory
backend the server's clock is driven by the test (every step is a distinct moment), so
the model is exact; on moto and SeaweedFS the clock is real, and where the outcome of a
late write-behind upload depends on timing within the server's one-second resolution
the model takes what the bucket shows, if it is one of the two outcomes it allows.

Examples per backend: MODEL_EXAMPLES (default 500 in memory, 20 on moto, 12 on
SeaweedFS through each transport, boto3 and obstore); seeded (derandomize), so a failure
reproduces.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from pydantic_core import to_json

from objectstore_s3 import (
    KeyNotFoundError,
    LocalFileConflictError,
    LocalPathClashError,
    ObjectStore,
    ObjectStoreError,
    ServerCapabilityError,
    SupersededWriteError,
)
from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.helpers import crash
from tests.support.model import Clash, Conflict, FolderRefused, Missing, Model
from tests.support.model.envs import (
    Env,
    MemoryEnv,
    MotoEnv,
    ObstoreEnv,
    S3Env,
    check_at_rest,
)

KEYS = ["k1", "k2", "a", "a/b"]
NODES = st.integers(0, 1)
KEY = st.sampled_from(KEYS)


class StoreMachine(RuleBasedStateMachine):
    """Two nodes on one bucket, in the given write modes, on the given environment."""

    def __init__(self, env_factory: Callable[[], Env], modes: tuple[str, str]) -> None:
        super().__init__()
        self.env = env_factory()
        self.modes = modes
        self.model = Model(modes, strict=self.env.strict, folders=self.env.folders)
        self.errors: list[list[ObjectStoreError]] = [[], []]
        self.seen = [0, 0]
        self.stores = [self._open(0), self._open(1)]
        self.counter = 0
        self.crashed = False

    def _open(self, node: int) -> ObjectStore:
        return self.env.open(node, self.modes[node], self.errors[node].append)

    def _value(self) -> bytes:
        self.counter += 1
        return f"v{self.counter}".encode()

    def _step(self) -> None:
        self.env.tick()
        if isinstance(self.env, MemoryEnv):
            self.model.now = self.env.clock.now

    def _expect(self, node: int, action: Callable[[], Any], predicted: Callable[[], Any]) -> Any:
        """Run `action` on the store and `predicted` on the model; same result or error."""
        self._step()
        try:
            expected: Any = ("ok", predicted())
        except Missing:
            expected = ("error", KeyNotFoundError)
        except Conflict:
            expected = ("error", LocalFileConflictError)
        except Clash:
            expected = ("error", LocalPathClashError)
        try:
            got: Any = ("ok", action())
        except (KeyNotFoundError, LocalFileConflictError, LocalPathClashError) as exc:
            got = ("error", type(exc))
        assert got == expected, f"node {node}: store gave {got}, model says {expected}"
        return got[1]

    # -- rules -------------------------------------------------------------------------------

    @rule(node=NODES, key=KEY)
    def save(self, node: int, key: str) -> None:
        value = self._value()
        self._expect(
            node,
            lambda: self.stores[node].save(key, value),
            lambda: self.model.save(self.model.nodes[node], key, value) or True,
        )

    @rule(node=NODES, key=KEY)
    def save_json(self, node: int, key: str) -> None:
        self.counter += 1
        obj = {"n": self.counter}
        value = to_json(obj)
        self._expect(
            node,
            lambda: self.stores[node].save_json(key, obj),
            lambda: self.model.save(self.model.nodes[node], key, value) or True,
        )

    @rule(node=NODES, key=KEY)
    def update(self, node: int, key: str) -> None:
        """Each update appends a fresh suffix: the value read back shows every update
        applied exactly once, in order, on top of the bucket's value (not a cached one)."""
        self.counter += 1
        suffix = f"+{self.counter}".encode()
        self._step()
        # The store goes first: the model learns from its reports which pending work it
        # dropped (the server's clock decides within its one-second resolution).
        try:
            got: bytes | str = self.stores[node].update_bytes(key, lambda v: (v or b"") + suffix)
        except ServerCapabilityError as exc:
            got = str(exc)
        try:
            expected = self.model.update(self.model.nodes[node], key, suffix, self._dropped(node))
        except FolderRefused:
            assert isinstance(got, str), got
            assert "keys under" in got
            return
        assert got == expected, f"node {node}: update gave {got!r}, model says {expected!r}"
        self._check_reports(node)

    @rule(node=NODES, key=KEY)
    def read(self, node: int, key: str) -> None:
        self._expect(
            node,
            lambda: self.stores[node].read_bytes(key),
            lambda: self.model.read(self.model.nodes[node], key),
        )

    @rule(node=NODES, key=KEY)
    def contains_key(self, node: int, key: str) -> None:
        self._expect(
            node,
            lambda: self.stores[node].contains_key(key),
            lambda: self.model.contains(self.model.nodes[node], key),
        )

    @rule(node=NODES, key=KEY)
    def delete(self, node: int, key: str) -> None:
        self._expect(
            node,
            lambda: self.stores[node].delete(key),
            lambda: self.model.delete(self.model.nodes[node], key) or True,
        )

    @rule(node=NODES)
    def keys(self, node: int) -> None:
        self._expect(
            node, lambda: self.stores[node].keys, lambda: self.model.keys(self.model.nodes[node])
        )

    @rule(node=NODES)
    def iterate(self, node: int) -> None:
        model_node = self.model.nodes[node]

        def predicted() -> list[tuple[str, bytes | None]]:
            return [(key, self.model.read(model_node, key)) for key in self.model.keys(model_node)]

        # No key is listed but unreadable: every listed key reads (a value, or None).
        self._expect(node, lambda: [(kvp.key, kvp.value) for kvp in self.stores[node]], predicted)

    @rule(node=NODES, key=KEY)
    def get_file_path(self, node: int, key: str) -> None:
        self._expect(
            node,
            lambda: self.stores[node].get_file_path(key) and None,
            lambda: self.model.get_file_path(self.model.nodes[node], key),
        )

    @rule(node=NODES, data=st.data())
    def write_file(self, node: int, data: st.DataObject) -> None:
        registered = sorted(self.model.nodes[node].registered)
        if not registered:
            return
        key = data.draw(st.sampled_from(registered))
        path = self.stores[node]._node.local.states.path_for(key)
        if not path.parent.is_dir() or path.is_dir():
            return  # its place on disk is taken by another key's file or folder
        value = self._value()
        self._step()
        path.write_bytes(value)
        self.model.write_file(self.model.nodes[node], key, value)

    @rule(node=NODES, data=st.data())
    def save_file(self, node: int, data: st.DataObject) -> None:
        with_files = sorted(
            key
            for key in self.model.nodes[node].registered
            if (local := self.model.nodes[node].disk.get(key)) and local.content is not None
        )
        if not with_files:
            return
        key = data.draw(st.sampled_from(with_files))
        self._expect(
            node,
            lambda: self.stores[node].save(key),
            lambda: self.model.save_file(self.model.nodes[node], key) or True,
        )

    @rule(node=NODES)
    def flush(self, node: int) -> None:
        self._step()
        self.stores[node].flush()
        self._model_flush(node)

    def _model_flush(self, node: int) -> None:
        self.model.flush(self.model.nodes[node], observe=self._dropped(node))
        self._check_reports(node)

    def _dropped(self, node: int) -> Callable[[str], bool]:
        """Whether the store reported a key's pending work dropped, since the last look."""
        new = self.errors[node][self.seen[node] :]
        self.seen[node] = len(self.errors[node])

        def dropped(key: str) -> bool:
            return any(
                isinstance(error, SupersededWriteError) and f"'{key}'" in str(error)
                for error in new
            )

        return dropped

    def _check_reports(self, node: int) -> None:
        kinds = {type(error) for error in self.errors[node]}
        assert kinds <= {SupersededWriteError, LocalFileConflictError}, self.errors[node]
        dropped = sum(isinstance(error, SupersededWriteError) for error in self.errors[node])
        assert dropped == self.model.nodes[node].dropped

    @rule(node=NODES)
    def clear(self, node: int) -> None:
        self._step()
        self.stores[node].clear()
        self._model_flush(node)
        self.model.nodes[node].cache.clear()

    @rule(node=NODES)
    def reopen(self, node: int) -> None:
        self._step()
        self.stores[node].close()
        self._model_flush(node)
        self.model.close(self.model.nodes[node])
        self.stores[node] = self._open(node)

    @rule(node=NODES)
    def kill_and_replay(self, node: int) -> None:
        self._step()
        crash(self.stores[node])
        self.model.crash(self.model.nodes[node])
        self.crashed = True
        self.stores[node] = self._open(node)  # adopts the journal: its work stays pending
        if self.modes[node] == "through":
            # Write-through replays at once, in the background.
            self.stores[node]._node.wait_for_replay()
            self._model_flush(node)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def bucket_within_the_ledger(self) -> None:
        state = self.env.ledger()
        if state is None:
            return
        reserved = sum(lease["files"] for lease in state["leases"].values())
        reserved += sum(hold["files"] for hold in state.get("holds", {}).values())
        assert len(self.env.objects()) <= state["files"] + reserved

    def teardown(self) -> None:
        try:
            for node, store in enumerate(self.stores):
                self._step()
                store.close()
                self._model_flush(node)
                self.model.close(self.model.nodes[node])
            check_at_rest(self.env, self.model.bucket, exact=not self.crashed)
        finally:
            self.env.close()


def _settings(examples: int) -> settings:
    return settings(
        max_examples=int(os.environ.get("MODEL_EXAMPLES", examples)),
        stateful_step_count=30,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


MODES = [("through", "through"), ("behind", "behind"), ("through", "behind")]
MODE_IDS = ["write-through", "write-behind", "mixed"]


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_model_in_memory(modes: tuple[str, str]) -> None:
    run_state_machine_as_test(lambda: StoreMachine(MemoryEnv, modes), settings=_settings(500))


@pytest.mark.moto
@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_model_on_moto(modes: tuple[str, str]) -> None:
    run_state_machine_as_test(lambda: StoreMachine(MotoEnv, modes), settings=_settings(20))


@pytest.mark.seaweedfs
@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_model_on_seaweedfs(seaweed: SeaweedServer, modes: tuple[str, str]) -> None:
    run_state_machine_as_test(
        lambda: StoreMachine(lambda: S3Env(seaweed), modes), settings=_settings(12)
    )


@pytest.mark.seaweedfs
@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_model_on_seaweedfs_obstore(seaweed: SeaweedServer, modes: tuple[str, str]) -> None:
    run_state_machine_as_test(
        lambda: StoreMachine(lambda: ObstoreEnv(seaweed), modes), settings=_settings(12)
    )
