"""The drill's fault schedule: parsing `--faults`, and a seeded plan that replays."""

from __future__ import annotations

import pytest

from kestrel.devstack.drill.schedule import DEFAULT_STOP_S, Fault, FaultSpec, parse, plan

SERVICES = ("ingest", "features", "feature-writer")


def test_parse_expands_all_and_counts():
    assert parse("kill:all*2", SERVICES) == [FaultSpec("kill", s, 2) for s in SERVICES]


def test_parse_reads_single_targets_and_outage_lengths():
    assert parse("kill:features, stop:redis/12.5, stop:kafka*2", SERVICES) == [
        FaultSpec("kill", "features", 1),
        FaultSpec("stop", "redis", 1, 12.5),
        FaultSpec("stop", "kafka", 2, DEFAULT_STOP_S),
    ]


@pytest.mark.parametrize("text", ["kill", "boom:features", "kill:nobody", "stop:features", "kill:ingest*x"])
def test_parse_rejects_what_it_cannot_read(text):
    with pytest.raises(ValueError, match="--faults"):
        parse(text, SERVICES)


def test_same_seed_same_plan_other_seed_other_order():
    specs = parse("kill:all*4", SERVICES)
    assert plan(specs, 7, 10, 100) == plan(specs, 7, 10, 100)
    assert [f.target for f in plan(specs, 7, 10, 100)] != [f.target for f in plan(specs, 8, 10, 100)]


def test_plan_holds_every_fault_in_order_within_the_window():
    faults = plan(parse("kill:all*4", SERVICES), 3, 10, 100)
    times = [f.at_s for f in faults]
    assert len(faults) == 12 and times == sorted(times)
    assert 10 <= times[0] and times[-1] < 100
    assert sorted(f.target for f in faults) == sorted(SERVICES * 4)


def test_a_fault_waits_until_the_previous_outage_has_ended():
    faults = plan([FaultSpec("stop", "redis", 2, 30.0)], 1, 0, 20)
    assert faults[1].at_s >= faults[0].at_s + 30


def test_fault_reads_as_words():
    assert str(Fault(3.25, "stop", "redis", 30)) == "stop redis for 30 s at 3.2 s"
    assert str(Fault(1, "kill", "features")) == "kill features at 1.0 s"
