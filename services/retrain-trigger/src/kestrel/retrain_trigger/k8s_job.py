"""`kestrel-retrain-k8s-job`: the retrain-trigger's job command on Kubernetes. Creates a Job from the template
(the kestrel-retrain-job-template ConfigMap) with the run's arguments appended to its container's args, waits
for it, and prints its pod's log, whose last line is kestrel-retrain-job's outcome. Exit 1 with one line on
stderr when the Job failed or the API refused; the trigger then fails the run."""

from __future__ import annotations

import argparse
import copy
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KestrelSettings, env_epilog, load_settings

_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class K8sJobSettings(KestrelSettings):
    """In-cluster defaults: the pod's service account (rbac.yaml) talks to the API server."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_RETRAIN_K8S_")

    template: Path = Path("/etc/kestrel/retrain/training-job.yaml")
    """The Job manifest (infra/k8s/retrain-trigger/job-template.yaml, mounted from its ConfigMap)."""
    namespace: str = "kestrel"
    api_url: str = "https://kubernetes.default.svc"
    poll_s: float = Field(5.0, gt=0)
    """How often the Job's status is read."""


class JobFailed(Exception):
    pass


def manifest(template: dict[str, Any], args: Sequence[str]) -> dict[str, Any]:
    """The template with the run's arguments after its container's own."""
    job = copy.deepcopy(template)
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [*(container.get("args") or []), *args]
    return job


def state(job: dict[str, Any]) -> str | None:
    """succeeded, failed, or None while it runs."""
    status = job.get("status") or {}
    if status.get("succeeded"):
        return "succeeded"
    failed = any(c.get("type") == "Failed" and c.get("status") == "True" for c in status.get("conditions") or [])
    return "failed" if failed else None


class Api:
    def __init__(self, s: K8sJobSettings) -> None:
        self.s = s
        self.context = ssl.create_default_context(cafile=str(_ACCOUNT / "ca.crt"))
        self.token = (_ACCOUNT / "token").read_text().strip()

    def call(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        request = urllib.request.Request(f"{self.s.api_url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise JobFailed(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')[:300]}") from exc
        except OSError as exc:
            raise JobFailed(f"Kubernetes API at {self.s.api_url} unreachable: {exc}") from exc
        return payload.decode(errors="replace") if raw else json.loads(payload)


def run(api: Api, s: K8sJobSettings, args: Sequence[str]) -> str:
    """Creates the Job, waits for its end, returns its pod's log (raises JobFailed with the log's last line)."""
    ns = s.namespace
    job = manifest(yaml.safe_load(s.template.read_text()), args)
    name = api.call("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)["metadata"]["name"]
    while (outcome := state(api.call("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}"))) is None:
        time.sleep(s.poll_s)
    pods = api.call("GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3D{name}")["items"]
    log = api.call("GET", f"/api/v1/namespaces/{ns}/pods/{pods[-1]['metadata']['name']}/log", raw=True) if pods else ""
    if outcome == "failed":
        last = [line for line in log.splitlines() if line.strip()] or ["no log"]
        raise JobFailed(f"Job {name} failed: {last[-1]}")
    return str(log)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="kestrel-retrain-k8s-job",
        description="Run kestrel-retrain-job as a Kubernetes Job; the arguments are passed on to it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=env_epilog(K8sJobSettings),
    )
    _, passed = p.parse_known_args(argv)
    s = load_settings(K8sJobSettings)
    try:
        print(run(Api(s), s, passed))
    except (JobFailed, OSError) as exc:
        print(f"kestrel-retrain-k8s-job: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
