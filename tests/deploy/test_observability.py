"""Prometheus, its rules and Grafana beside compose, checked against the compose file and the code's metrics."""

import copy
import json

import pytest
from checks import COMPOSE_FILE, DEPLOYABLES, REPO_ROOT, load_yaml, settings_class
from compose_checks import built_from, env_values, mounts, services
from observability_checks import (
    PROMETHEUS_SERIES,
    alerting_problems,
    dashboard_problems,
    datasource_problems,
    datasource_types,
    defined_series,
    migration_tables,
    panels,
    promql_series,
    provider_problems,
    rule_problems,
    scrape_problems,
    source_files,
    sql_problems,
    unscraped_problems,
)
from stack_checks import container_ports

BASE = COMPOSE_FILE.parent
PROMETHEUS = BASE / "prometheus"
GRAFANA = BASE / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "kestrel.json"


@pytest.fixture(scope="module")
def compose():
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def prometheus():
    return load_yaml(PROMETHEUS / "prometheus.yml")


@pytest.fixture(scope="module")
def series():
    return defined_series(source_files(REPO_ROOT))


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def datasources():
    return load_yaml(GRAFANA / "provisioning" / "datasources" / "kestrel.yml")


def roles(compose):
    """Compose service -> the deployable whose image it runs."""
    return {name: d for d in DEPLOYABLES for name in built_from(compose, BASE, REPO_ROOT / d.dockerfile)}


def serves(compose):
    """Metrics ports of a compose service: its *_METRICS_PORT settings, else its settings' default for a Kestrel
    image, else the container ports it publishes (Triton, Alertmanager, Prometheus)."""
    known = roles(compose)

    def ports(name):
        env = env_values(services(compose)[name])
        set_here = {int(v) for k, v in env.items() if k.endswith("_METRICS_PORT")}
        if set_here or name not in known:
            return set_here or container_ports(services(compose)[name])
        return {settings_class(known[name]).model_fields["metrics_port"].default}

    return ports


def long_running(compose):
    """Every compose service of the eight services' images that keeps running (db-migrate is a one-shot)."""
    return [
        name
        for name, deployable in roles(compose).items()
        if deployable.k8s and services(compose)[name].get("restart", "unless-stopped") != "no"
    ]


def test_the_code_defines_the_pipeline_metrics(series):
    assert {
        "kestrel_ingest_events_total",
        "kestrel_inference_score_seconds_bucket",
        "kestrel_consumer_lag_records",
    } <= set(series)


def test_every_scrape_target_is_a_compose_service_on_its_metrics_port(prometheus, compose):
    assert scrape_problems(prometheus, compose, serves(compose)) == []


def test_a_target_on_the_wrong_port_or_host_fails(prometheus, compose):
    broken = copy.deepcopy(prometheus)
    broken["scrape_configs"][0]["dns_sd_configs"][0] |= {"port": 9101, "names": ["ingest", "ingest-2"]}
    assert len(scrape_problems(broken, compose, serves(compose))) == 2


def test_every_service_and_triton_is_scraped(prometheus, compose):
    assert long_running(compose), "no Kestrel service found in compose"
    assert unscraped_problems(prometheus, compose, [*long_running(compose), "triton", "alertmanager"]) == []


def test_prometheus_alerts_go_to_the_alertmanager(prometheus, compose):
    assert alerting_problems(prometheus, compose, "alertmanager") == []


def test_prometheus_reads_its_config_and_rules_from_the_repository(prometheus, compose):
    mounted = {target: source for _, source, target in mounts(services(compose)["prometheus"])}
    assert (BASE / mounted["/etc/prometheus"]).resolve() == PROMETHEUS.resolve()
    assert [f"/etc/prometheus/{p.name}" for p in sorted(PROMETHEUS.glob("rules*.yml"))] == prometheus["rule_files"]


def test_prometheus_rules_select_metrics_that_exist(series):
    rules = load_yaml(PROMETHEUS / "rules.yml")
    assert rules["groups"]
    assert rule_problems(rules, set(series) | PROMETHEUS_SERIES) == []


def test_dashboard_is_valid_json_with_provisioned_sources_and_real_metrics(dashboard, datasources, series):
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard_problems(dashboard, datasource_types(datasources), set(series) | PROMETHEUS_SERIES) == []


def test_a_made_up_metric_on_the_dashboard_fails(dashboard, datasources, series):
    broken = copy.deepcopy(dashboard)
    target = next(t for p in panels(broken) for t in p.get("targets", []) if "expr" in t)
    target["expr"] = target["expr"].replace("kestrel_", "kestrel_made_up_", 1)
    (problem,) = dashboard_problems(broken, datasource_types(datasources), set(series) | PROMETHEUS_SERIES)
    assert "kestrel_made_up_" in problem


def test_dashboard_sql_reads_tables_of_the_migrations(dashboard, datasources):
    tables = migration_tables(REPO_ROOT / "infra" / "postgres" / "migrations")
    assert sql_problems(dashboard, datasource_types(datasources), tables) == []


@pytest.mark.parametrize(
    "topic, wanted",
    [
        ("throughput", {"kestrel_ingest_events_total", "kestrel_inference_stream_scored_total"}),
        ("lag", {"kestrel_consumer_lag_records"}),
        ("latency", {"kestrel_inference_score_seconds_bucket"}),
        ("serving", {"kestrel_inference_serving_version"}),
    ],
)
def test_dashboard_charts_each_part_of_the_pipeline(dashboard, topic, wanted):
    charted = {
        name
        for p in panels(dashboard)
        if topic in p.get("title", "").lower()
        for t in p.get("targets", [])
        for name in promql_series(t.get("expr", ""))
    }
    assert wanted <= charted


def test_dashboard_charts_drift_share_from_the_drift_reports(dashboard):
    (panel,) = [p for p in panels(dashboard) if "drift share" in p["title"].lower()]
    assert "drift_reports" in panel["targets"][0]["rawSql"]


def test_throughput_charts_a_counter_of_every_service_that_defines_one(dashboard, series, compose):
    """Each service's own counters live under services/<name>/src: one of them is on the throughput panel."""
    (panel,) = [p for p in panels(dashboard) if "throughput" in p["title"].lower()]
    charted = {name for t in panel["targets"] for name in promql_series(t["expr"])}
    for deployable in {roles(compose)[name] for name in long_running(compose)}:
        counters = {
            s for s, path in series.items() if s.endswith("_total") and f"services/{deployable.name}/" in str(path)
        }
        assert not counters or counters & charted, f"{deployable.name}: none of {sorted(counters)} is charted"


def test_grafana_data_sources_name_compose_services(datasources, compose):
    assert datasource_problems(datasources, compose) == []


def test_grafana_provisions_the_repositorys_dashboards(compose):
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "kestrel.yml")
    assert provider_problems(providers, compose, BASE, "grafana", DASHBOARD.parent) == []
    home = env_values(services(compose)["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{providers['providers'][0]['options']['path']}/{DASHBOARD.name}"
