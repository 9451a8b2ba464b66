"""The retry decisions both transports share (failures.Retries): pure, no I/O."""

from __future__ import annotations

import pytest

from objectstore_s3.transport.failures import Failure, Retries, Step


def test_reads_retry_transient_failures_then_fail() -> None:
    retries = Retries(3)
    assert retries.after(Failure.NETWORK, 1) is Step.RETRY
    assert retries.after(Failure.THROTTLED, 2) is Step.RETRY
    assert retries.after(Failure.SERVER, 3) is Step.FAIL
    assert Retries(3).after(Failure.DENIED, 1) is Step.FAIL  # retrying cannot help
    assert Retries(3).after(Failure.NOT_FOUND, 1) is Step.FAIL  # translated: KeyNotFoundError


def test_a_conditional_write_whose_answer_was_lost_is_verified_or_unknown() -> None:
    retries = Retries(3, written="etag")
    assert retries.after(Failure.NETWORK, 1) is Step.RETRY  # may have landed
    assert retries.after(Failure.PRECONDITION, 2) is Step.VERIFY  # perhaps its own effect
    lost = Retries(3, written="etag")
    for attempt in (1, 2):
        assert lost.after(Failure.SERVER, attempt) is Step.RETRY
    assert lost.after(Failure.SERVER, 3) is Step.UNKNOWN
    # Even a final answer cannot undo what an earlier attempt may have done.
    after_loss = Retries(3, written="etag")
    after_loss.after(Failure.NETWORK, 1)
    assert after_loss.after(Failure.DENIED, 2) is Step.UNKNOWN


def test_preconditions_and_404s_of_conditional_writes() -> None:
    assert Retries(3, written="etag").after(Failure.PRECONDITION, 1) is Step.PRECONDITION
    assert Retries(3, written="etag").after(Failure.NOT_FOUND, 1) is Step.PRECONDITION
    # Refused before being applied: nothing may have landed, so no doubt arises.
    refused = Retries(2, written="etag")
    assert refused.after(Failure.NOT_SENT, 1) is Step.RETRY
    assert refused.after(Failure.THROTTLED, 2) is Step.FAIL


@pytest.mark.parametrize("attempt", [1, 2, 3, 10])
def test_backoff_is_jittered_and_at_most_2_seconds(attempt: int) -> None:
    ceiling = min(2.0, 0.1 * 2 ** (attempt - 1))
    for _ in range(50):
        assert ceiling / 2 <= Retries.backoff(attempt) <= ceiling
