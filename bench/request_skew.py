"""How much Predict's request-time features cost the model, against the stream's exact vectors.

`python -m bench.request_skew [--events N] [--store]`: simulator traffic over a week; for every labelled
event the stream's vector (FeatureComputer) and Predict's (RequestFeatures.from_log over the card's event log
as the online store keeps it: the events the stream's state held) are scored by the served model; prints
PR-AUC and ROC-AUC of both, of Predict before the event log (the card's stored vector advanced by the event,
RequestFeatures.merge), how often each feature differs, and what each request-time computation costs per
row. `--store` also writes the week through the online store into a real Redis and measures the one-card
read (vector only, and vector with the event log) and the memory per card.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import numpy as np

from kestrel.devstack.paths import model_repository
from kestrel.featureset import load_feature_set
from kestrel.featureset.request import RequestFeatures
from kestrel.featureset.state import EntityState, FeatureComputer, id_hash
from kestrel.model.artifact import load, versions
from kestrel.model.metrics import pr_auc, roc_auc
from kestrel.online_store import LogColumns
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


def vectors(events: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """(stream vectors, Predict vectors from the event log, Predict vectors from the stored vector alone,
    labels, [us per row from the log, us per row from the vector]) for the labelled, accepted events."""
    card = load_feature_set("card")
    request = RequestFeatures(card)
    history, label_of = week(events, seed)
    computer, states, last, ids = FeatureComputer(card), {}, {}, {}
    defaults = np.asarray(card.defaults, dtype=np.float64)
    exact, served, bare, y, spent = [], [], [], [], [0.0, 0.0]
    for event in history:
        entity = event["entity_id"]
        state = states.get(entity) or states.setdefault(entity, computer.new_state())
        log = held(state, ids) if event["event_id"] in label_of else None
        ids[id_hash(event["event_id"])] = event["event_id"]
        previous = last.get(entity)
        vector = computer.update(state, event)
        if not isinstance(vector, list):
            continue
        last[entity] = (event["event_time"], vector)
        if log is None:
            continue
        stored, t0 = (np.asarray(previous[1]), previous[0]) if previous else (defaults, 0)
        args = (stored[None, :], np.array([previous is not None]), np.array([t0]))
        started = time.perf_counter()
        served.append(request.from_log(log, event))
        middle = time.perf_counter()
        bare.append(request.merge(*args, np.array([event["amount"]]), np.array([event["event_time"]]))[0])
        spent[0] += middle - started
        spent[1] += time.perf_counter() - middle
        exact.append(vector)
        y.append(label_of[event["event_id"]])
    matrices = tuple(np.asarray(m, dtype=np.float32) for m in (exact, served, bare))
    return (*matrices, np.asarray(y), [1e6 * t / max(len(y), 1) for t in spent])  # type: ignore[return-value]


def held(state: EntityState, ids: dict[int, str]) -> LogColumns:
    """The events a card's stream state holds, as the online store's event log gives them back (the writer
    logs every vector's event and prunes and caps as the state does; the store's tests hold it to that)."""
    return LogColumns(list(state.times), [ids[h] for h in state.ids], state.numeric, state.categorical)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--store", action="store_true", help="also measure the Redis read and memory per card")
    args = parser.parse_args()
    card = load_feature_set("card")
    root = model_repository()
    model = load(root / "kestrel_fraud" / str(max(versions(root, "kestrel_fraud"))))
    X, M, B, y, cost = vectors(args.events, args.seed)
    print(f"{len(y):,} labelled events, {int(y.sum()):,} fraud; model {model.model_name} v{model.version}\n")
    print("| vectors | PR-AUC | ROC-AUC |\n|---|---|---|")
    for name, matrix in (
        ("stream (exact)", X),
        ("Predict (from the store's event log)", M),
        ("Predict, stored vector advanced by the event (before the log)", B),
    ):
        p = model.predict(matrix)
        print(f"| {name} | {pr_auc(y, p):.4f} | {roc_auc(y, p):.4f} |")
    differs = np.abs(X - M) > 1e-6 * np.maximum(1.0, np.abs(X))
    print("\nshare of rows where Predict's value differs from the stream's:")
    for j in np.argsort(-differs.mean(axis=0)):
        if differs[:, j].any():
            print(f"  {card.names[j]:<24} {differs[:, j].mean():6.1%}")
    print(f"\nrequest-time features per row: {cost[0]:.1f} us from the log, {cost[1]:.1f} us advancing the vector")
    if args.store:
        from bench.request_skew_store import report

        asyncio.run(report(card, args.events, args.seed))


if __name__ == "__main__":
    main()
