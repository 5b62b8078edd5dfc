"""How much Predict's request-time features cost the model, against the stream's exact vectors.

`python -m bench.request_skew [--events N] [--store]`: simulator traffic over a week; for every labelled
event the stream's vector (FeatureComputer, exact) and Predict's (the card's previous vector advanced by the
event, RequestFeatures, with the card's categorical sets as the online store keeps them) are scored by the
served model; prints PR-AUC and ROC-AUC of both, Predict's without the sets (vector only, as before the
store kept them), and how often each feature differs. `--store` also writes the week through the online
store into a real Redis and measures the one-card read (vector only, and vector with the set answers) and
the memory per card.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from kestrel.devstack.paths import model_repository
from kestrel.featureset import FeatureSet, load_feature_set
from kestrel.featureset.request import RequestFeatures
from kestrel.featureset.state import FeatureComputer
from kestrel.model.artifact import load, versions
from kestrel.model.metrics import pr_auc, roc_auc
from kestrel.simulator.generator import Generator, GeneratorConfig

DAY_MS = 86_400_000


def week(events: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A simulated week's events in arrival order, and the label of each labelled event id."""
    start = int(time.time() * 1000) - 7 * DAY_MS
    generator = Generator(GeneratorConfig(cards=max(1000, events // 15), seed=seed, invalid_rate=0.0), start)
    history, labels = [], []
    for step in range(10):
        batch = generator.step(events // 10, start + (step + 1) * (7 * DAY_MS - 60_000) // 10)
        history += batch.events
        labels += batch.labels
    return history, {label["event_id"]: int(label["label"]) for label in labels + generator.drain_labels()}


def vectors(events: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(stream vectors, Predict vectors, Predict vectors without sets, labels) for the labelled, accepted
    events of a simulated week."""
    card = load_feature_set("card")
    merge = RequestFeatures(card)
    history, label_of = week(events, seed)
    computer, states, last, sets, newest = FeatureComputer(card), {}, {}, {}, {}
    longest = max(w[-1] for w in card.set_windows_ms.values())
    defaults = np.asarray(card.defaults, dtype=np.float64)
    exact, served, bare, y = [], [], [], []
    for event in history:
        entity = event["entity_id"]
        state = states.get(entity) or states.setdefault(entity, computer.new_state())
        previous = last.get(entity)
        vector = computer.update(state, event)
        if not isinstance(vector, list):
            continue
        last[entity] = (event["event_time"], vector)
        seen = sets.setdefault(entity, {})
        floor = newest.get(entity, 0) - longest  # the store has pruned values at or before it
        answer = answer_sets(card, seen, event, floor)
        remember(card, seen, event)
        newest[entity] = max(newest.get(entity, 0), event["event_time"])
        if event["event_id"] not in label_of:
            continue
        stored, t0 = (np.asarray(previous[1]), previous[0]) if previous else (defaults, 0)
        args = (
            stored[None, :],
            np.array([previous is not None]),
            np.array([t0]),
            np.array([event["amount"]]),
            np.array([event["event_time"]]),
        )
        served.append(merge.merge(*args, sets=answer)[0])
        bare.append(merge.merge(*args)[0])
        exact.append(vector)
        y.append(label_of[event["event_id"]])
    return tuple(np.asarray(m, dtype=np.float32) for m in (exact, served, bare)) + (np.asarray(y),)  # type: ignore[return-value]


@dataclass(frozen=True)
class Answer:
    """SetAnswers of one request."""

    last_seen: np.ndarray
    counts: np.ndarray
    dropped: np.ndarray
    complete_from: np.ndarray


def answer_sets(card: FeatureSet, seen: dict[str, dict[str, int]], event: dict[str, Any], floor: int) -> Answer:
    """What the store's read script answers for the event from the card's sets (value -> last-seen time),
    values at or before `floor` being pruned."""
    t, last, counts = event["event_time"], [], []
    for source, windows in card.set_windows_ms.items():
        values = seen.get(source, {})
        at = values.get(event[source], -1)
        last.append(at if at > floor else -1)
        times = np.fromiter(values.values(), dtype=np.int64, count=len(values))
        counts += [int((times > max(t - w, floor)).sum()) for w in windows]
    none = np.full((1, len(last)), -1, dtype=np.int64)
    return Answer(np.array([last], dtype=np.int64), np.array([counts], dtype=np.int64), none, np.zeros(1, np.int64))


def remember(card: FeatureSet, seen: dict[str, dict[str, int]], event: dict[str, Any]) -> None:
    """The write script's rule for one event (newest time per value; pruning changes no answer here, and
    no simulated card comes near the cap)."""
    t = event["event_time"]
    for source in card.set_windows_ms:
        values = seen.setdefault(source, {})
        values[event[source]] = max(values.get(event[source], t), t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--store", action="store_true", help="also measure the Redis read and memory per card")
    args = parser.parse_args()
    card = load_feature_set("card")
    root = model_repository()
    model = load(root / "kestrel_fraud" / str(max(versions(root, "kestrel_fraud"))))
    X, M, B, y = vectors(args.events, args.seed)
    print(f"{len(y):,} labelled events, {int(y.sum()):,} fraud; model {model.model_name} v{model.version}\n")
    print("| vectors | PR-AUC | ROC-AUC |\n|---|---|---|")
    for name, matrix in (
        ("stream (exact)", X),
        ("Predict (request-time merge with the store's sets)", M),
        ("Predict, vector only (before the sets)", B),
    ):
        p = model.predict(matrix)
        print(f"| {name} | {pr_auc(y, p):.4f} | {roc_auc(y, p):.4f} |")
    differs = np.abs(X - M) > 1e-6 * np.maximum(1.0, np.abs(X))
    print("\nshare of rows where Predict's value differs from the stream's:")
    for j in np.argsort(-differs.mean(axis=0)):
        if differs[:, j].any():
            print(f"  {card.names[j]:<24} {differs[:, j].mean():6.1%}")
    if args.store:
        from bench.request_skew_store import report

        asyncio.run(report(card, args.events, args.seed))


if __name__ == "__main__":
    main()
