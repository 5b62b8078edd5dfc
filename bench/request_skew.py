"""How much Predict's request-time features cost the model, against the stream's exact vectors.

`python -m bench.request_skew [--events N]`: simulator traffic over a week; for every labelled event the
stream's vector (FeatureComputer, exact) and Predict's (the card's previous vector advanced by the event,
RequestFeatures) are scored by the served model; prints PR-AUC and ROC-AUC of both, how often each feature
differs, and the PR-AUC with the set features (distinct, is_new) taken from the stream, which is what an
online store that kept per-card category sets would give.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kestrel.devstack.paths import model_repository
from kestrel.featureset import load_feature_set
from kestrel.featureset.request import RequestFeatures
from kestrel.featureset.state import FeatureComputer
from kestrel.model.artifact import load, versions
from kestrel.model.metrics import pr_auc, roc_auc
from kestrel.simulator.generator import Generator, GeneratorConfig

DAY_MS = 86_400_000


def vectors(events: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stream vectors, Predict vectors, labels) for the labelled, accepted events of a simulated week."""
    card = load_feature_set("card")
    merge = RequestFeatures(card)
    start = int(time.time() * 1000) - 7 * DAY_MS
    generator = Generator(GeneratorConfig(cards=max(1000, events // 15), seed=seed, invalid_rate=0.0), start)
    history, labels = [], []
    for step in range(10):
        batch = generator.step(events // 10, start + (step + 1) * (7 * DAY_MS - 60_000) // 10)
        history += batch.events
        labels += batch.labels
    label_of = {label["event_id"]: int(label["label"]) for label in labels + generator.drain_labels()}
    computer, states, last = FeatureComputer(card), {}, {}
    defaults = np.asarray(card.defaults, dtype=np.float64)
    exact, served, y = [], [], []
    for event in history:
        entity = event["entity_id"]
        state = states.get(entity) or states.setdefault(entity, computer.new_state())
        previous = last.get(entity)
        vector = computer.update(state, event)
        if not isinstance(vector, list):
            continue
        last[entity] = (event["event_time"], vector)
        if event["event_id"] not in label_of:
            continue
        stored, t0 = (np.asarray(previous[1]), previous[0]) if previous else (defaults, 0)
        served.append(
            merge.merge(
                stored[None, :],
                np.array([previous is not None]),
                np.array([t0]),
                np.array([event["amount"]]),
                np.array([event["event_time"]]),
            )[0]
        )
        exact.append(vector)
        y.append(label_of[event["event_id"]])
    return np.asarray(exact, dtype=np.float32), np.asarray(served, dtype=np.float32), np.asarray(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=99)
    args = parser.parse_args()
    card = load_feature_set("card")
    root = model_repository()
    model = load(root / "kestrel_fraud" / str(max(versions(root, "kestrel_fraud"))))
    X, M, y = vectors(args.events, args.seed)
    sets = [i for i, f in enumerate(card.features) if f.aggregation in ("distinct", "is_new")]
    with_sets = M.copy()
    with_sets[:, sets] = X[:, sets]
    print(f"{len(y):,} labelled events, {int(y.sum()):,} fraud; model {model.model_name} v{model.version}\n")
    print("| vectors | PR-AUC | ROC-AUC |\n|---|---|---|")
    for name, matrix in (
        ("stream (exact)", X),
        ("Predict (request-time merge)", M),
        ("Predict with exact set features", with_sets),
    ):
        p = model.predict(matrix)
        print(f"| {name} | {pr_auc(y, p):.4f} | {roc_auc(y, p):.4f} |")
    differs = np.abs(X - M) > 1e-6 * np.maximum(1.0, np.abs(X))
    print("\nshare of rows where Predict's value differs from the stream's:")
    for j in np.argsort(-differs.mean(axis=0)):
        if differs[:, j].any():
            print(f"  {card.names[j]:<24} {differs[:, j].mean():6.1%}")


if __name__ == "__main__":
    main()
