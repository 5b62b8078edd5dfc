"""`python -m kestrel.model`: train on a simulator history (JSON lines), save the artifact, publish it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kestrel.featureset import load_feature_set
from kestrel.model import artifact as artifacts
from kestrel.model.dataset import from_events
from kestrel.model.errors import ModelError
from kestrel.model.repository import publish_to_repository
from kestrel.model.train import TrainConfig, train


def read_history(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events and labels from `kestrel-sim --to jsonl` output (`{"topic", "key", "value"}` per line)."""
    events: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith('{"topic"'):  # the simulator's log lines share stdout when no --output
                continue
            record = json.loads(line)
            (labels if "label" in record["value"] else events).append(record["value"])
    return events, labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--history", type=Path, required=True, help="kestrel-sim --to jsonl output")
    parser.add_argument("--feature-set", default="card")
    parser.add_argument("--name", default="kestrel_fraud", help="model name (also the Triton model name)")
    parser.add_argument("--kind", default=TrainConfig.kind, choices=["logreg", "mlp", "auto"])
    parser.add_argument(
        "--threshold", type=float, default=TrainConfig.threshold, help="decision threshold of the reference precision"
    )
    parser.add_argument("--version", type=int, help="default: next free version in --out / --repository")
    parser.add_argument("--out", type=Path, help="artifact store root: writes <out>/<name>/<version>/")
    parser.add_argument("--repository", type=Path, help="Triton model repository to publish the version into")
    args = parser.parse_args(argv)
    if not (args.out or args.repository):
        parser.error("say where the model goes: --out, --repository or both")
    try:
        feature_set = load_feature_set(args.feature_set)
        data = from_events(*read_history(args.history), feature_set)
        result = train(data, TrainConfig(kind=args.kind, threshold=args.threshold))
        roots = [root for root in (args.out, args.repository) if root]
        version = args.version or max((artifacts.next_version(root, args.name) for root in roots), default=1)
        artifact = artifacts.build(result, data, args.name, version)
        if args.out:
            print(f"wrote {artifacts.save(artifact, args.out)}", file=sys.stderr)
        if args.repository:
            print(f"published {publish_to_repository(artifact, args.repository)}", file=sys.stderr)
        band = result.performance.band("pr_auc") if result.performance else None
        if band is None:
            print("warning: fewer than 6 holdout chunks hold fraud: no reference PR-AUC band", file=sys.stderr)
    except (ModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "version": version,
                "kind": result.kind,
                "holdout": result.holdout,
                "candidates": result.candidates,
                "reference_pr_auc_band": band,
                "training": result.details,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
