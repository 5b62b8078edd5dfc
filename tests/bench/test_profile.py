"""The bench's profile summary: idle event-loop samples are left out, whatever py-spy calls the selector."""

from bench.profile import top_frames

COLLAPSED = "\n".join(
    [
        "main (m.py:1);_run_once (asyncio/base_events.py:9);EpollSelector.select (selectors.py:468) 70",
        "main (m.py:1);_run_once (asyncio/base_events.py:9);select (selectors.py:468) 5",
        "main (m.py:1);_run_once (asyncio/base_events.py:9);_PollLikeSelector.select (selectors.py:2) 5",
        "main (m.py:1);score (inference/scoring.py:3) 20",
        "main (m.py:1);Producer._poll_forever (common/kafka/producer.py:5) 10",
    ]
)


def test_idle_selector_samples_are_left_out_and_work_is_kept():
    busy, own, total = top_frames(COLLAPSED)
    assert busy == 30
    assert own["score (inference/scoring.py)"] == 20 and total["main (m.py)"] == 30
    assert not any("selectors.py" in frame for frame in own)
