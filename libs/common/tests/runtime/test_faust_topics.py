"""The faust consumer subscribes only once the broker's metadata lists its topics (faust_app.until_listed)."""

from __future__ import annotations

import pytest

from kestrel.common.runtime.faust_app import until_listed


async def test_waits_until_every_topic_is_listed():
    answers = [{"a"}, {"a"}, {"a", "b"}]
    asked = []

    async def listed() -> set[str]:
        asked.append(1)
        return answers[min(len(asked), len(answers)) - 1]

    assert await until_listed(listed, {"a", "b"}, timeout_s=5, poll_s=0) == set()
    assert len(asked) == 3


async def test_gives_up_after_the_timeout_and_names_what_is_missing():
    async def listed() -> set[str]:
        return {"a"}

    assert await until_listed(listed, {"a", "b", "c"}, timeout_s=0.05, poll_s=0.01) == {"b", "c"}


@pytest.mark.parametrize("names", [set(), {"a"}])
async def test_asks_once_when_nothing_is_missing(names):
    asked = []

    async def listed() -> set[str]:
        asked.append(1)
        return {"a"}

    assert await until_listed(listed, names, timeout_s=5) == set()
    assert asked == [1]
