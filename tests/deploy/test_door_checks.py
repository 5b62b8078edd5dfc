"""The closed-door checks catch each way a gRPC Deployment could open up again (the real manifests, broken)."""

import copy

import pytest
from checks import K8S_ROOT
from door_checks import door_problems, optional_secret_problems
from k8s_checks import containers, kustomize_manifests, workloads

PREFIX = "KESTREL_INFERENCE_"


@pytest.fixture(scope="module")
def pristine():
    return kustomize_manifests(K8S_ROOT / "inference")


@pytest.fixture
def docs(pristine):
    return copy.deepcopy(pristine)


def api(docs):
    [workload] = [w for w in workloads(docs) if w["metadata"]["name"] == "kestrel-inference-api"]
    return workload, containers(workload)[0]


def env(docs, name):
    return next(e for e in api(docs)[1]["env"] if e["name"] == name)


def drop_env(docs, name):
    container = api(docs)[1]
    container["env"] = [e for e in container["env"] if e["name"] != name]


def optional_tokens(docs):
    env(docs, f"{PREFIX}AUTH_TOKENS")["valueFrom"]["secretKeyRef"]["optional"] = True


def grpc_probe(docs):
    api(docs)[1]["readinessProbe"] = {"grpc": {"port": 50052}}


def http_probe(docs):
    api(docs)[1]["livenessProbe"]["httpGet"]["scheme"] = "HTTP"


def optional_cert_secret(docs):
    [tls] = [v for v in api(docs)[0]["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"]
    tls["secret"]["optional"] = True


def unmounted_cert(docs):
    container = api(docs)[1]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "tls"]


BREAKAGES = {
    "optional token Secret": (optional_tokens, "comes from an optional Secret"),
    "tokens as a literal": (
        lambda d: (
            env(d, f"{PREFIX}AUTH_TOKENS").update(value='["t"]') or env(d, f"{PREFIX}AUTH_TOKENS").pop("valueFrom")
        ),
        "does not come from a Secret",
    ),
    "no require_auth": (lambda d: drop_env(d, f"{PREFIX}REQUIRE_AUTH"), "REQUIRE_AUTH is not"),
    "no certificate": (lambda d: drop_env(d, f"{PREFIX}TLS_CERTFILE"), "TLS_CERTFILE is not set"),
    "certificate not mounted": (unmounted_cert, "is not inside a mounted, non-optional Secret volume"),
    "optional certificate Secret": (optional_cert_secret, "is not inside a mounted, non-optional Secret volume"),
    "gRPC probe": (grpc_probe, "readinessProbe is not an httpGet with scheme HTTPS"),
    "HTTP probe": (http_probe, "livenessProbe is not an httpGet with scheme HTTPS"),
}


def test_the_real_manifests_pass(docs):
    assert door_problems(docs, PREFIX) == [] and optional_secret_problems(docs) == []


@pytest.mark.parametrize("breakage", BREAKAGES, ids=str)
def test_each_breakage_is_reported(docs, breakage):
    mutate, message = BREAKAGES[breakage]
    mutate(docs)
    problems = door_problems(docs, PREFIX)
    assert any(message in p and p.startswith("kestrel-inference-api/inference: ") for p in problems), problems


def test_an_optional_token_secret_is_reported_anywhere(docs):
    optional_tokens(docs)
    assert optional_secret_problems(docs) == [
        "kestrel-inference-api/inference: KESTREL_INFERENCE_AUTH_TOKENS comes from an optional Secret"
    ]
