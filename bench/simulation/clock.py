"""Virtual time for many threads: thousands of simulated processes in one real process.

Each actor is a thread, but exactly one runs at a time. An actor that waits (a sleep, a
request's way to the server and back) gives the turn to the actor due earliest, and the
clock jumps to that actor's time. So a simulated minute costs only the CPU its actors
use, the order of events is decided by virtual time alone (a seeded run repeats), and the
real code under test (the quota's conditional updates, their races) runs unchanged: it
only needs to take its time from this clock (`objectstore_s3.quota.bookkeeper.Timer`).

Any real lock an actor holds while it waits must never be wanted by another actor: one
thread runs, and it would wait forever. The in-memory bucket calls its request hooks
outside its lock, which is what makes it usable here.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable

__all__ = ["SimulationStopped", "VirtualClock"]

# Virtual time starts at a realistic epoch: the ledger keeps server times and generations
# (milliseconds of it), and a lease that expires at 60.0 would look like damage.
EPOCH = 1_800_000_000.0


class SimulationStopped(BaseException):
    """Raised in every actor once the simulation ends early (out of real time, or an
    actor failed); a BaseException, so that no `except Exception` of the code under test
    takes it for a failure of its own."""


class VirtualClock:
    """The simulation's time (seconds since the epoch), and its scheduler of actors."""

    def __init__(self, start: float = EPOCH) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._due: list[tuple[float, int, threading.Event]] = []
        self._order = itertools.count()
        self._done = threading.Event()
        self._local = threading.local()
        self._failure: BaseException | None = None
        self._stopped = False

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of virtual time: the turn goes to whoever is due first."""
        wake = self._event()
        with self._lock:
            if self._stopped:
                raise SimulationStopped
            heapq.heappush(self._due, (self._now + max(seconds, 0.0), next(self._order), wake))
            self._hand_over()
        wake.wait()
        wake.clear()
        if self._stopped:
            raise SimulationStopped

    def spawn(self, target: Callable[[], None], at: float) -> None:
        """An actor that starts at virtual time `at` (call before `run`). An exception in
        it ends the whole simulation: `run` raises it."""
        wake = threading.Event()
        with self._lock:
            heapq.heappush(self._due, (at, next(self._order), wake))

        def actor() -> None:
            wake.wait()
            try:
                if self._stopped:
                    raise SimulationStopped
                target()
            except SimulationStopped:
                return
            except BaseException as exc:  # reported by run(); the others are stopped
                self._failure = exc
                self._stop()
                return
            with self._lock:
                self._hand_over()

        threading.Thread(target=actor, daemon=True).start()

    def run(self, timeout: float) -> None:
        """Let the actors run until every one has finished (real seconds: `timeout`)."""
        with self._lock:
            self._hand_over()
        if not self._done.wait(timeout):
            self._stop()
            raise TimeoutError(f"the simulation did not finish within {timeout:.0f} s")
        if self._failure is not None:
            raise self._failure

    def _stop(self) -> None:
        """End the run: every actor raises SimulationStopped at its next turn."""
        with self._lock:
            self._stopped = True
            for _, _, wake in self._due:
                wake.set()
            self._due.clear()
            self._done.set()

    def _hand_over(self) -> None:
        """Wake the actor due first (called with the lock held); none left: done."""
        if not self._due:
            self._done.set()
            return
        when, _, wake = heapq.heappop(self._due)
        self._now = max(self._now, when)
        wake.set()

    def _event(self) -> threading.Event:
        event: threading.Event | None = getattr(self._local, "event", None)
        if event is None:
            event = self._local.event = threading.Event()
        return event
