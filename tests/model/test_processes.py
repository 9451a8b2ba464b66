"""Model-based test with processes: two real processes on each of two nodes (the processes
of a node share its cache_dir), random operations, and the events of issue 18, each
observation checked against the reference model (tests/support/model/).

Operations: save, read, contains_key, delete, keys, flush, clear, close-and-reopen.
Events: a SIGKILL (a spare process takes over and replays the journal), a fork while the
store is open (the child exits, or calls flush() or close() on the inherited store: it
must be refused or act as a fresh store of the child; the parent's state is unchanged),
a KeyboardInterrupt before or after one of the requests of a call (the bucket then holds
either outcome, which the model takes; the store keeps working), the node cache's lock
held by another process during an operation, and a full disk under one process's cache
writes. After those two, every process of the node reads the key: none may see an entry
older than the last save or delete. Local files (get_file_path) are left to the two-node
model test (test_model.py): its model of them assumes one process per node.

Invariants: the bucket never holds more objects than the ledger accounts for; at rest the
bucket equals the model; with no kill and no interrupt, the ledger equals a listing.

Examples: MODEL_EXAMPLES (default 150 per mode mix in memory, 12 on SeaweedFS); seeded
(derandomize). MODEL_SHRINK=0 (the default in CI) skips shrinking a failing example.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from objectstore_s3.server.seaweedfs import SeaweedServer
from objectstore_s3.transport.memory import MemoryBucket
from tests.support.model import Missing
from tests.support.model.envs import Env, check_at_rest
from tests.support.model.processes import (
    PROCESSES,
    ProcessMemoryEnv,
    ProcessS3Env,
    Workers,
    cache_database,
    cache_lock_held,
    open_command,
    process_model,
    restart,
    siblings,
    take_interrupted,
)
from tests.support.model.shared_backend import BucketServer

KEYS = ["k1", "k2", "a", "a/b"]
PROCESS = st.integers(0, PROCESSES - 1)
KEY = st.sampled_from(KEYS)
CALLS = st.sampled_from(["save", "delete", "read", "contains"])


class ProcessMachine(RuleBasedStateMachine):
    """Four processes (0, 1 on node 0; 2, 3 on node 1) in the given modes, on `env`."""

    def __init__(self, workers: Workers, env: Env, modes: tuple[str, ...]) -> None:
        super().__init__()
        self.workers = workers
        self.env = env
        self.modes = modes
        self.model = process_model(modes, strict=env.strict)
        self.reports: list[list[tuple[str, str]]] = [[] for _ in modes]
        self.seen = [0] * len(modes)
        self.counter = 0
        self.inexact = False  # a kill or an interrupt: the ledger may count maybes
        for process in range(len(modes)):
            workers.healthy(process)
            self._open(process)

    def _open(self, process: int) -> None:
        self._call(process, *open_command(self.env, process // 2, self.modes[process]))

    def _call(self, process: int, *command: Any) -> dict[str, Any]:
        reply = self.workers[process].call(*command)
        self.reports[process].extend(reply["reports"])
        return reply

    def _value(self) -> bytes:
        self.counter += 1
        return f"v{self.counter}".encode()

    def _step(self) -> None:
        self.env.tick()
        if isinstance(self.env, ProcessMemoryEnv):
            self.model.now = self.env.clock.now

    def _expect(
        self, process: int, name: str, args: list[Any], predicted: Callable[[], Any]
    ) -> Any:
        """Run op `name` in the process and `predicted` on the model: same result or error."""
        self._step()
        try:
            expected: Any = ("ok", predicted())
        except Missing:
            expected = ("error", "KeyNotFoundError")
        got = self._run(process, name, args)
        assert got == expected, f"process {process}: {name}{args} gave {got}, model says {expected}"
        return got[1]

    def _run(self, process: int, name: str, args: list[Any]) -> tuple[str, Any]:
        reply = self._call(process, "op", name, args)
        if "value" in reply:
            return ("ok", reply["value"])
        if "error" in reply:
            return ("error", reply["error"])
        return ("interrupted", reply.get("fired"))

    def _predict(self, process: int, name: str, key: str, value: bytes) -> Callable[[], Any]:
        node = self.model.nodes[process]
        return {
            "save": lambda: self.model.save(node, key, value) or True,
            "delete": lambda: self.model.delete(node, key) or True,
            "read": lambda: self.model.read(node, key),
            "contains": lambda: self.model.contains(node, key),
        }[name]

    @staticmethod
    def _args(name: str, key: str, value: bytes) -> list[Any]:
        return [key, value] if name == "save" else [key]

    # -- operations --------------------------------------------------------------------------

    @rule(process=PROCESS, key=KEY)
    def save(self, process: int, key: str) -> None:
        value = self._value()
        self._expect(process, "save", [key, value], self._predict(process, "save", key, value))

    @rule(process=PROCESS, key=KEY)
    def read(self, process: int, key: str) -> None:
        self._expect(process, "read", [key], self._predict(process, "read", key, b""))

    @rule(process=PROCESS, key=KEY)
    def contains_key(self, process: int, key: str) -> None:
        self._expect(process, "contains", [key], self._predict(process, "contains", key, b""))

    @rule(process=PROCESS, key=KEY)
    def delete(self, process: int, key: str) -> None:
        self._expect(process, "delete", [key], self._predict(process, "delete", key, b""))

    @rule(process=PROCESS)
    def keys(self, process: int) -> None:
        self._expect(process, "keys", [], lambda: self.model.keys(self.model.nodes[process]))

    @rule(process=PROCESS)
    def flush(self, process: int) -> None:
        self._step()
        assert self._run(process, "flush", []) == ("ok", None)
        self._model_flush(process)

    def _model_flush(self, process: int) -> None:
        new = self.reports[process][self.seen[process] :]
        self.seen[process] = len(self.reports[process])

        def dropped(key: str) -> bool:
            return any(kind == "SupersededWriteError" and f"'{key}'" in text for kind, text in new)

        self.model.flush(self.model.nodes[process], observe=dropped)
        kinds = {kind for kind, _ in self.reports[process]}
        assert kinds <= {"SupersededWriteError"}, self.reports[process]
        drops = sum(kind == "SupersededWriteError" for kind, _ in self.reports[process])
        assert drops == self.model.nodes[process].dropped, self.reports[process]

    @rule(process=PROCESS)
    def clear(self, process: int) -> None:
        self._step()
        assert self._run(process, "clear", []) == ("ok", None)
        self._model_flush(process)
        self.model.nodes[process].cache.clear()  # the node's cache: every process's

    @rule(process=PROCESS)
    def reopen(self, process: int) -> None:
        self._step()
        self._call(process, "close")
        self._model_flush(process)
        self.model.close(self.model.nodes[process])
        self._open(process)

    # -- events ------------------------------------------------------------------------------

    @rule(process=PROCESS)
    def kill(self, process: int) -> None:
        """SIGKILL; a new process of the node opens a store, which adopts the journal."""
        self._step()
        self.workers.replace(process)
        restart(self.model, process)
        self.reports[process], self.seen[process] = [], 0
        self.inexact = True
        self._open(process)  # write-through replays at once (the worker waits for it)
        if self.modes[process] == "through":
            self._model_flush(process)

    @rule(process=PROCESS, variant=st.sampled_from(["exit", "flush", "close"]))
    def fork(self, process: int, variant: str) -> None:
        """A child forked with the store open leaves the parent's state alone; used in
        the child, the store works as the child's own (node/node.py)."""
        self._step()
        outcome = self._call(process, "fork", variant)["value"]
        allowed = {"exited"} if variant == "exit" else {"worked"}
        assert outcome in allowed, f"forked child's {variant}: {outcome}"
        self._check_pending(process)

    def _check_pending(self, process: int) -> None:
        pending = self._call(process, "pending")["value"]
        node = self.model.nodes[process]
        assert pending == {key: (p.op, p.value) for key, p in node.pending.items()}

    @rule(
        process=PROCESS,
        name=CALLS,
        key=KEY,
        index=st.integers(0, 3),
        stage=st.sampled_from(["before", "after"]),
    )
    def interrupt(self, process: int, name: str, key: str, index: int, stage: str) -> None:
        """KeyboardInterrupt at the index-th request of a call, before or after it."""
        value = self._value()
        before = copy.deepcopy(self.model)
        self._step()
        try:
            expected: Any = ("ok", self._predict(process, name, key, value)())
        except Missing:
            expected = ("error", "KeyNotFoundError")
        self._call(process, "arm", index, stage)
        got = self._run(process, name, self._args(name, key, value))
        if got[0] != "interrupted":
            assert got == expected, f"process {process}: {name} {key} gave {got}, model {expected}"
            return  # the call made fewer requests: it ran whole
        self.model = before
        self.model.now = self.env.clock.now if isinstance(self.env, ProcessMemoryEnv) else 0.0
        self.inexact = True
        self._observe_interrupted(process, name, key, value)

    def _observe_interrupted(self, process: int, name: str, key: str, value: bytes) -> None:
        """Either outcome may have happened: the model takes the one the bucket and the
        process's journal show."""
        now = self.env.objects().get(key)
        pending = self._call(process, "pending")["value"].get(key)
        take_interrupted(self.model, self.model.nodes[process], (name, key, value), now, pending)
        assert now == self.model.bucket_value(key), f"bucket holds {now!r} for {key}"
        self._check_pending(process)

    @rule(process=PROCESS, name=CALLS, key=KEY)
    def contended(self, process: int, name: str, key: str) -> None:
        """The node cache's write lock is held by another process for the whole call."""
        self._read_everywhere(process, key)  # the node's processes hold what they read
        path = cache_database(self.env, process // 2)
        if not path.exists():
            return  # no cache yet (a read of a missing key may make none)
        with cache_lock_held(path):
            self._uncached_call(process, name, key)
        self._read_everywhere(process, key)

    @rule(process=PROCESS, name=CALLS, key=KEY)
    def full_disk(self, process: int, name: str, key: str) -> None:
        """The process's writes to the node cache fail: the disk is full."""
        self._read_everywhere(process, key)
        self._call(process, "full")
        self._uncached_call(process, name, key)
        self._read_everywhere(process, key)

    def _uncached_call(self, process: int, name: str, key: str) -> None:
        """A call whose cache update cannot happen: the key is not cached afterwards
        (a write-behind save does not touch the cache; its key stays as it was)."""
        value = self._value()
        node = self.model.nodes[process]
        cached = key in node.cache
        self._expect(
            process, name, self._args(name, key, value), self._predict(process, name, key, value)
        )
        writes = name == "delete" or (name == "save" and node.mode == "through")
        if writes or (name == "read" and not cached):
            node.cache.pop(key, None)

    def _read_everywhere(self, process: int, key: str) -> None:
        """No process of the node reads an entry older than the last save or delete."""
        for other in siblings(process):
            self._expect(other, "read", [key], self._predict(other, "read", key, b""))

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def bucket_within_the_ledger(self) -> None:
        state = self.env.ledger()
        if state is None:
            return
        reserved = sum(lease["files"] for lease in state["leases"].values())
        reserved += sum(hold["files"] for hold in state.get("holds", {}).values())
        assert len(self.env.objects()) <= state["files"] + reserved, state

    def teardown(self) -> None:
        try:
            for process in range(len(self.modes)):
                self._step()
                self._call(process, "close")
                self._model_flush(process)
                self.model.close(self.model.nodes[process])
            check_at_rest(self.env, self.model.bucket, exact=not self.inexact)
        finally:
            for process in range(len(self.modes)):
                # A failed example may leave a store open: closed (or its worker replaced).
                try:
                    self.workers[process].call("close")
                except Exception:
                    self.workers.replace(process)
            self.env.close()


def _settings(examples: int) -> settings:
    # Shrinking examples of real processes can outlast pytest's timeout: off in CI (the
    # failing example is shown unshrunk) and with MODEL_SHRINK=0.
    shrink = os.environ.get("MODEL_SHRINK", "0" if os.environ.get("CI") else "1") == "1"
    phases = None if shrink else list(Phase)[:4]
    return settings(
        phases=phases or list(Phase),
        max_examples=int(os.environ.get("MODEL_EXAMPLES", examples)),
        stateful_step_count=25,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture
def workers() -> Iterator[Workers]:
    """The test function's worker processes, reused by every example."""
    started = Workers()
    try:
        yield started
    finally:
        started.stop()


# Each node: one write-through and one write-behind process; or all write-behind.
MODES = [("through", "behind", "behind", "through"), ("behind",) * 4]
MODE_IDS = ["mixed", "write-behind"]


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_processes_model_in_memory(workers: Workers, modes: tuple[str, ...]) -> None:
    server = BucketServer(MemoryBucket())
    try:
        run_state_machine_as_test(
            lambda: ProcessMachine(workers, ProcessMemoryEnv(server), modes),
            settings=_settings(150),
        )
    finally:
        server.close()


@pytest.mark.seaweedfs
@pytest.mark.parametrize("modes", MODES[:1], ids=MODE_IDS[:1])
def test_processes_model_on_seaweedfs(
    seaweed: SeaweedServer, workers: Workers, modes: tuple[str, ...]
) -> None:
    run_state_machine_as_test(
        lambda: ProcessMachine(workers, ProcessS3Env(seaweed), modes), settings=_settings(12)
    )
