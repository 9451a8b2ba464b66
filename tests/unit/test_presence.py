"""The torture test's judge (tests/support/presence.py): a lower bound of what existed at once."""

from __future__ import annotations

from tests.support.presence import Write, surely_present_peak

INF = float("inf")


def put(key: str, started: float, answered: float, size: int = 10, status: int = 200) -> Write:
    return Write(key, "put", started, answered, status, size)


def delete(key: str, started: float, answered: float, status: int = 204) -> Write:
    return Write(key, "delete", started, answered, status, 0)


def test_objects_alive_together_are_counted_together() -> None:
    peak = surely_present_peak([put("a", 0, 1), put("b", 2, 3, size=5), delete("a", 4, 5)])
    assert (peak.files, peak.bytes) == (2, 15)


def test_a_delete_before_a_create_never_overlaps_it() -> None:
    # What a listing can show at once (a behind its cursor, b ahead of it) never was.
    peak = surely_present_peak([put("a", 0, 1), delete("a", 2, 3), put("b", 4, 5)])
    assert peak.files == 1


def test_a_delete_in_flight_may_have_landed_after_the_put() -> None:
    assert surely_present_peak([delete("a", 0, 2), put("a", 1, 1.5), put("b", 3, 4)]).files == 1
    # Refused by its precondition, a delete removed nothing.
    refused = [delete("a", 0, 2, status=412), put("a", 1, 1.5), put("b", 3, 4)]
    assert surely_present_peak(refused).files == 2


def test_unanswered_or_refused_puts_are_not_proof_of_an_object() -> None:
    writes = [put("a", 0, INF, status=None), put("b", 0, 1, status=412), put("c", 0, 1)]
    assert surely_present_peak(writes).files == 1


def test_the_size_is_the_smallest_version_that_may_be_current() -> None:
    # The 100-byte overwrite may have been applied before or after the 10-byte one.
    overlapping = [put("a", 0, 1, size=50), put("a", 2, 4, size=100), put("a", 3, 5, size=10)]
    assert surely_present_peak(overlapping).bytes == 50  # at 1, before the others
    later = [*overlapping, put("a", 6, 7, size=80)]
    assert surely_present_peak(later).bytes == 80  # by 7 only the last one can be current
