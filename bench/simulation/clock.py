"""Virtual time for many actors: thousands of simulated processes in one real process.

Each actor is a greenlet (a coroutine with a stack of its own, so the real, blocking code
under test runs in it unchanged), and exactly one runs at a time. An actor that waits (a
sleep, a request's way to the server and back) switches to the scheduler, which jumps the
clock to the actor due earliest and switches to it. So a simulated minute costs only the
CPU its actors use (a switch is a microsecond; with threads, a handover took about a
millisecond of futex traffic and 1,000 nodes did not fit in CI), and the order of events
is decided by virtual time alone (a seeded run repeats). The code under test only needs to
take its time from this clock (`objectstore_s3.quota.bookkeeper.Timer`).

An actor must never wait on a real lock another actor holds: they share one thread. The
in-memory bucket calls its request hooks outside its lock, which is what makes it usable
here; locks the actors share are `VirtualLock`s.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import time
from collections.abc import Callable

import greenlet

__all__ = ["SimulationStopped", "VirtualClock", "VirtualLock"]

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
        self._due: list[tuple[float, int, greenlet.greenlet]] = []
        self._order = itertools.count()
        self._scheduler: greenlet.greenlet | None = None
        self._failure: BaseException | None = None
        self._stopped = False
        self._parked: set[greenlet.greenlet] = set()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of virtual time: the turn goes to whoever is due first."""
        if self._stopped or self._scheduler is None:
            raise SimulationStopped
        me = greenlet.getcurrent()
        heapq.heappush(self._due, (self._now + max(seconds, 0.0), next(self._order), me))
        self._scheduler.switch()
        if self._stopped:
            raise SimulationStopped

    def park(self) -> None:
        """Wait, unscheduled, until another actor calls `wake` (a lock's queue)."""
        if self._stopped or self._scheduler is None:
            raise SimulationStopped
        self._parked.add(greenlet.getcurrent())
        self._scheduler.switch()
        if self._stopped:
            raise SimulationStopped

    def wake(self, actor: greenlet.greenlet) -> None:
        """Schedule a parked actor now (it runs after the caller next waits)."""
        self._parked.discard(actor)
        heapq.heappush(self._due, (self._now, next(self._order), actor))

    def spawn(self, target: Callable[[], None], at: float) -> None:
        """An actor that starts at virtual time `at` (call before `run`). An exception in
        it ends the whole simulation: `run` raises it."""

        def actor() -> None:
            try:
                if self._stopped:
                    raise SimulationStopped
                target()
            except SimulationStopped:
                return
            except BaseException as exc:  # reported by run(); the others are stopped
                if self._failure is None:
                    self._failure = exc
                self._stopped = True

        heapq.heappush(self._due, (at, next(self._order), greenlet.greenlet(actor)))

    def run(self, timeout: float) -> None:
        """Let the actors run until every one has finished (real seconds: `timeout`)."""
        self._scheduler = greenlet.getcurrent()
        deadline = time.monotonic() + timeout
        turns = 0
        while self._due and not self._stopped:
            when, _, actor = heapq.heappop(self._due)
            self._now = max(self._now, when)
            actor.parent = self._scheduler
            actor.switch()  # back here when it waits or ends
            turns += 1
            if turns % 1024 == 0 and time.monotonic() > deadline:
                self._stop()
                raise TimeoutError(f"the simulation did not finish within {timeout:.0f} s")
        self._stop()
        if self._failure is not None:
            raise self._failure

    def _stop(self) -> None:
        """End the run: every waiting actor raises SimulationStopped where it waits."""
        self._stopped = True
        waiting, self._due = [actor for _, _, actor in self._due], []
        waiting += list(self._parked)
        self._parked.clear()
        for actor in waiting:
            if actor:  # started and waiting (one never started just never runs)
                actor.throw(SimulationStopped)


class VirtualLock:
    """A re-entrant lock for actors: one that finds it taken waits in a queue, in virtual
    time (a real lock would stop the one running thread while the holder waits for its
    turn), and gets it from the holder in the order it came."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._owner: greenlet.greenlet | None = None
        self._depth = 0
        self._queue: collections.deque[greenlet.greenlet] = collections.deque()

    def __enter__(self) -> VirtualLock:
        me = greenlet.getcurrent()
        if self._owner is not None and self._owner is not me:
            self._queue.append(me)
            while self._owner is not me:
                self._clock.park()
        self._owner = me
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth:
            return
        self._owner = None
        while self._queue:
            nxt = self._queue.popleft()
            if nxt:  # (an actor stopped while it waited is gone)
                self._owner = nxt  # handed over: nobody can take it in between
                self._clock.wake(nxt)
                return
