"""The eight Kestrel services in compose and infra/k8s, each deployable alone (issue 13)."""

import pytest
from checks import COMPOSE_FILE, DEPLOYABLES, K8S_ROOT, REPO_ROOT, load_yaml, project_table
from compose_checks import built_from, services
from stack_checks import PENDING, pending, service_problems, unstarted_address_problems

BASE = COMPOSE_FILE.parent
EIGHT = (
    "ingest",
    "features",
    "feature-writer",
    "inference",
    "prediction-logger",
    "drift-monitor",
    "alerting",
    "retrain-trigger",
)
SERVICES = [d for d in DEPLOYABLES if d.k8s]


@pytest.fixture(scope="module")
def compose():
    return load_yaml(COMPOSE_FILE)


@pytest.mark.parametrize("name", EIGHT)
def test_each_of_the_eight_is_registered_for_compose_and_kubernetes(compose, name):
    assert name in services(compose)
    if pending(name):
        pytest.skip(f"{PENDING[name].relative_to(REPO_ROOT)} does not exist yet")
    assert name in {d.name for d in SERVICES}, f"{name}: add it to DEPLOYABLES (k8s=True) in tests/deploy/checks.py"
    assert (K8S_ROOT / name / "kustomization.yaml").is_file()


@pytest.mark.parametrize("deployable", SERVICES, ids=lambda d: d.name)
def test_service_runs_its_console_script_with_a_healthcheck(compose, deployable):
    """kestrel-<name> under the service's own name; every other long-running role a script of the same package."""
    scripts = project_table(REPO_ROOT / deployable.pyproject).get("scripts", {})
    assert service_problems(compose, BASE, deployable.name, scripts, f"kestrel-{deployable.name}") == []
    for role in built_from(compose, BASE, REPO_ROOT / deployable.dockerfile):
        if services(compose)[role].get("restart", "unless-stopped") != "no":
            assert service_problems(compose, BASE, role, scripts) == []


def test_every_service_starts_what_its_addresses_name(compose):
    """`docker compose up <service>` alone brings up every host its settings point at."""
    assert unstarted_address_problems(compose, services(compose)) == []
