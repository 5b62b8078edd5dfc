"""The bench's profile summary: samples of a thread waiting (in a selector, or natively) are left out."""

from bench.profile import top_frames

COLLAPSED = "\n".join(
    [
        "main (m.py:1);_run_once (asyncio/base_events.py:9);EpollSelector.select (selectors.py:468) 70",
        "main (m.py:1);_run_once (asyncio/base_events.py:9);select (selectors.py:468) 5",
        "main (m.py:1);_run_once (asyncio/base_events.py:9);_PollLikeSelector.select (selectors.py:2) 5",
        "main (m.py:1);score (inference/scoring.py:3) 20",
        "main (m.py:1);Producer._poll_forever (common/kafka/producer.py:5) 10",
        "Thread.run (threading.py:9);Producer._poll_forever (common/kafka/producer.py:5);Producer_poll (ck.so);"
        "cnd_timedwait (libc.so.6);pthread_cond_timedwait (libc.so.6);0x7fec (libc.so.6) 40",
        "Thread.run (threading.py:9);0x7fa (grpc/cygrpc.so);epoll_wait (libc.so.6) 40",
    ]
)


def test_idle_selector_and_native_wait_samples_are_left_out_and_work_is_kept():
    busy, own, total = top_frames(COLLAPSED)
    assert busy == 30
    assert own["score (inference/scoring.py)"] == 20 and total["main (m.py)"] == 30
    assert not any("selectors.py" in frame for frame in own)
