"""The door's bound on work in flight: admits up to the limit, refuses past it with retry advice."""

import pytest

from kestrel.common.admission import Admission
from kestrel.common.errors import OverloadedError


def test_admits_up_to_the_limit_then_refuses_with_when_to_retry():
    door = Admission("ingest", limit=10, retry_after_ms=150)
    with door.admit(6), door.admit(4):
        assert door.in_flight == 10
        with pytest.raises(OverloadedError) as refused:
            with door.admit(1):
                pass
        assert refused.value.retry_after_ms == 150
        assert str(refused.value) == "ingest at capacity: 10 in flight, limit 10, 1 more asked; retry in 150 ms"
    assert door.in_flight == 0


def test_a_call_larger_than_the_limit_is_admitted_alone_and_counted_back_after_a_failure():
    door = Admission("inference", limit=10, retry_after_ms=100)
    with pytest.raises(RuntimeError):
        with door.admit(50):  # alone: let in, so no call is refused forever
            assert door.in_flight == 50
            raise RuntimeError("scoring failed")
    assert door.in_flight == 0


def test_work_already_started_is_counted_but_never_refused():
    door = Admission("ingest", limit=10, retry_after_ms=100)
    with door.admit(10), door.admit(500, may_refuse=False):
        assert door.in_flight == 510
        with pytest.raises(OverloadedError):
            with door.admit(1):
                pass
    assert door.in_flight == 0
