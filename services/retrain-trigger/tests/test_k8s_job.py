"""kestrel-retrain-k8s-job's pure parts, over the Job template the manifests ship."""

from __future__ import annotations

from pathlib import Path

import yaml

from kestrel.retrain_trigger.k8s_job import manifest, state

TEMPLATE = Path(__file__).resolve().parents[3] / "infra" / "k8s" / "retrain-trigger" / "job-template.yaml"


def shipped() -> dict:
    return yaml.safe_load(yaml.safe_load(TEMPLATE.read_text())["data"]["training-job.yaml"])


def test_the_shipped_template_runs_the_job_with_the_runs_arguments():
    job = manifest(shipped(), ["--model", "fraud", "--reason", "[r1] drift"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert job["kind"] == "Job" and job["metadata"]["generateName"] == "kestrel-retrain-"
    assert container["command"] == ["kestrel-retrain-job"]
    assert container["args"] == ["--model", "fraud", "--reason", "[r1] drift"]
    assert shipped()["spec"]["template"]["spec"]["containers"][0]["args"] == []  # the template is not changed


def test_a_job_is_running_until_it_succeeded_or_failed():
    assert state({"status": {"active": 1}}) is None and state({}) is None
    assert state({"status": {"succeeded": 1}}) == "succeeded"
    assert state({"status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}}) == "failed"
