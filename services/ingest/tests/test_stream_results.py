"""PublishStream's answer in bounded memory (servicer.StreamResults): pure, no server."""

from __future__ import annotations

from kestrel.common.kafka.producer import Delivery
from kestrel.common.validation import Violation
from kestrel.ingest.publisher import Outcome
from kestrel.ingest.servicer import StreamResults


def outcome(index: int, accepted: bool) -> Outcome:
    if accepted:
        return Outcome(index, f"e{index}", delivery=Delivery("t", 0, index))
    return Outcome(index, f"e{index}", violations=[Violation("amount", "must be positive")])


def test_a_short_stream_lists_every_event():
    results = StreamResults(limit=10)
    results.add([outcome(i, i % 3 != 0) for i in range(9)])
    r = results.response
    assert [x.index for x in r.results] == list(range(9)) and r.omitted == 0
    assert (r.accepted, r.rejected) == (6, 3)


def test_past_the_limit_only_events_not_accepted_are_listed_and_the_rest_counted():
    results = StreamResults(limit=10)
    for start in range(0, 100, 25):  # chunk by chunk, as the stream is read
        results.add([outcome(i, i % 10 != 7) for i in range(start, start + 25)])
    r = results.response
    assert [x.index for x in r.results] == [*range(10), *range(17, 100, 10)]
    assert all(not x.accepted for x in r.results[10:])
    assert (r.accepted, r.rejected, r.omitted) == (90, 10, 100 - len(r.results))


def test_the_answer_never_holds_more_than_twice_the_limit():
    results = StreamResults(limit=5)
    results.add([outcome(i, False) for i in range(1000)])
    assert len(results.response.results) == 10 and results.response.omitted == 990
    assert results.response.rejected == 1000
