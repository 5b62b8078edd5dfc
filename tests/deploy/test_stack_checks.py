"""The stack and observability checks accept good inputs and fail on broken ones (a check that cannot fail proves
nothing)."""

import copy
import textwrap

import observability_checks as obs
import pytest
import stack_checks
import yaml

COMPOSE = textwrap.dedent("""\
    services:
      db:
        image: postgres:16
        healthcheck: {test: [CMD, pg_isready]}
      api:
        build: {context: ., dockerfile: Dockerfile}
        environment: {KESTREL_API_DB_DSN: "postgresql://u:p@db:5432/x", KESTREL_API_METRICS_PORT: "9100"}
        depends_on: {db: {condition: service_healthy}}
      worker:
        build: {context: ., dockerfile: Dockerfile}
        entrypoint: [kestrel-worker]
        healthcheck: {test: [CMD, "true"]}
      prometheus:
        image: prom/prometheus:v3.5.0
        ports: ["127.0.0.1:9090:9090"]
      grafana:
        image: grafana/grafana:12.0.0
        volumes: [./dashboards:/var/lib/grafana/dashboards:ro]
    """)
DOCKERFILE = 'FROM python:3.11-slim\nHEALTHCHECK CMD ["true"]\nENTRYPOINT ["kestrel-api"]\n'
SCRIPTS = {"kestrel-api": "a:main", "kestrel-worker": "w:main"}


@pytest.fixture
def compose(tmp_path):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "dashboards").mkdir()
    return yaml.safe_load(COMPOSE)


def test_services_run_their_scripts_with_healthchecks(compose, tmp_path):
    assert stack_checks.entrypoint(compose["services"]["api"], tmp_path) == ["kestrel-api"]
    assert stack_checks.service_problems(compose, tmp_path, "api", SCRIPTS, "kestrel-api") == []
    assert stack_checks.service_problems(compose, tmp_path, "worker", SCRIPTS) == []
    assert stack_checks.unstarted_address_problems(compose, compose["services"]) == []


@pytest.mark.parametrize(
    "name, edit, message",
    [
        ("api", lambda s: s.update(entrypoint=["kestrel-other"]), "not a console script"),
        ("api", lambda s: s.update(entrypoint=["kestrel-worker"]), "expected kestrel-api"),
        ("api", lambda s: s.update(healthcheck={"disable": True}), "no healthcheck"),
        ("api", lambda s: s.update(build={"context": ".", "dockerfile": "Missing"}), "not a console script"),
        ("worker", lambda s: s.pop("healthcheck"), None),
        ("nope", lambda s: None, "no compose service nope"),
    ],
)
def test_a_service_without_its_script_or_healthcheck_fails(compose, tmp_path, name, edit, message):
    edit(compose["services"].get(name, {}))
    script = "kestrel-api" if name == "api" else None
    problems = stack_checks.service_problems(compose, tmp_path, name, SCRIPTS, script)
    # worker has no healthcheck of its own, but its image's counts: still fine
    assert any(message in p for p in problems) if message else problems == []


def test_an_address_not_started_with_the_service_fails(compose):
    del compose["services"]["api"]["depends_on"]
    assert "names db, which `up api` does not start" in stack_checks.unstarted_address_problems(compose, ["api"])[0]


def test_container_ports_reads_short_long_and_range_forms():
    svc = {
        "ports": ["127.0.0.1:9090:9090", {"target": 3000, "published": 3000}, "8000-8001:8000-8001"],
        "expose": [9100],
    }
    assert stack_checks.container_ports(svc) == {9090, 3000, 8000, 8001, 9100}


# ---------------------------------------------------------------- metrics and PromQL


@pytest.mark.parametrize(
    "expr, names",
    [
        ("histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[$__rate_interval])))", {"x_seconds_bucket"}),
        ('sum(rate(a_total{job="x", le=~"0.5|1"}[5m])) / on (job) group_left b_count', {"a_total", "b_count"}),
        ("up == 0", {"up"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
        ("x offset 5m > bool 1e3", {"x"}),
        ("max by (job, instance) (a or b) unless c", {"a", "b", "c"}),
        ("topk(5, sum without (pod) (c:recorded:rate5m))", {"c:recorded:rate5m"}),
        ("1 - 2", set()),
    ],
)
def test_promql_series_are_the_metric_names_only(expr, names):
    assert obs.promql_series(expr) == names


def test_defined_series_come_from_prometheus_client_calls(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import collections, enum\nfrom prometheus_client import Counter, Gauge, Histogram\n"
        'A = Counter("a_total", "help", ["x"])\nB = Histogram("b_seconds", "help", buckets=(1,))\n'
        'C = Gauge("c", "help")\nD = collections.Counter("word")\nE = enum.Enum("Color", "RED GREEN")\n'
    )
    assert set(obs.defined_series([source])) == {
        "a_total",
        "a_created",
        "b_seconds_bucket",
        "b_seconds_count",
        "b_seconds_sum",
        "b_seconds_created",
        "c",
    }


# ---------------------------------------------------------------- Prometheus

PROMETHEUS = textwrap.dedent("""\
    alerting: {alertmanagers: [{static_configs: [{targets: ["api:9093"]}]}]}
    scrape_configs:
      - {job_name: api, dns_sd_configs: [{names: [api], type: A, port: 9100}]}
      - {job_name: prometheus, static_configs: [{targets: ["prometheus:9090"]}]}
    """)


@pytest.fixture
def prometheus():
    return yaml.safe_load(PROMETHEUS)


def serves(compose):
    return lambda name: {9100} if name == "api" else stack_checks.container_ports(compose["services"][name])


def all_prometheus_problems(prometheus, compose):
    return (
        obs.scrape_problems(prometheus, compose, serves(compose))
        + obs.unscraped_problems(prometheus, compose, ["api", "prometheus"])
        + obs.alerting_problems(prometheus, compose, "api")
    )


def test_good_prometheus_passes(prometheus, compose):
    assert all_prometheus_problems(prometheus, compose) == []


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p["scrape_configs"][0]["dns_sd_configs"][0].update(names=["apii"]), "apii is not a compose"),
        (lambda p: p["scrape_configs"][0]["dns_sd_configs"][0].update(port=9101), "not 9101"),
        (lambda p: p["scrape_configs"][0]["dns_sd_configs"][0].update(type="SRV"), "needs type A and a port"),
        (lambda p: p["scrape_configs"][1]["static_configs"][0].update(targets=["prometheus:9091"]), "not 9091"),
        (lambda p: p["scrape_configs"].pop(0), "api: no Prometheus job scrapes it"),
        (lambda p: p.pop("alerting"), "not to api"),
    ],
)
def test_broken_prometheus_fails(prometheus, compose, edit, message):
    edit(prometheus)
    problems = all_prometheus_problems(prometheus, compose)
    assert any(message in p for p in problems), problems


def test_rules_must_select_known_metrics():
    rules = {"groups": [{"rules": [{"alert": "Down", "expr": "up == 0"}, {"alert": "Lag", "expr": "lagg > 1"}]}]}
    assert obs.rule_problems(rules, {"up", "lag"}) == ["Lag: lagg is not a metric the code defines"]


# ---------------------------------------------------------------- Grafana

SOURCES = {"p": "prometheus", "pg": "grafana-postgresql-datasource"}
DASHBOARD = {
    "panels": [
        {
            "id": 1,
            "title": "rate",
            "gridPos": {"h": 1},
            "targets": [{"datasource": {"uid": "p"}, "expr": "rate(a[1m])"}],
        },
        {
            "type": "row",
            "panels": [
                {
                    "id": 2,
                    "title": "sql",
                    "gridPos": {"h": 1},
                    "datasource": {"uid": "pg"},
                    "targets": [{"rawSql": "SELECT 1 FROM reports, jsonb_array_elements(x) AS m"}],
                }
            ],
        },
    ]
}


def all_dashboard_problems(dashboard):
    return obs.dashboard_problems(dashboard, SOURCES, {"a"}) + obs.sql_problems(dashboard, SOURCES, {"reports"})


def test_good_dashboard_passes():
    assert all_dashboard_problems(DASHBOARD) == []


def panel(dashboard, number):
    return dashboard["panels"][0] if number == 1 else dashboard["panels"][1]["panels"][0]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: panel(d, 1)["targets"][0].update(expr="rate(b[1m])"), "b is not a metric the code defines"),
        (lambda d: panel(d, 1)["targets"][0].update(expr="vector(1)"), "selects no metric"),
        (lambda d: panel(d, 1)["targets"][0].update(datasource={"uid": "x"}), "data source x is not provisioned"),
        (lambda d: panel(d, 2).update(id=1), "panel id 1 is used twice"),
        (lambda d: panel(d, 1).pop("gridPos"), "needs gridPos"),
        (lambda d: panel(d, 2)["targets"][0].update(rawSql="SELECT 1 FROM report"), "reads report, no migration"),
        (lambda d: panel(d, 2)["targets"][0].update(rawSql="SELECT 1"), "its SQL reads no table"),
    ],
)
def test_broken_dashboard_fails(edit, message):
    dashboard = copy.deepcopy(DASHBOARD)
    edit(dashboard)
    problems = all_dashboard_problems(dashboard)
    assert any(message in p for p in problems), problems


def test_migration_tables_include_views(tmp_path):
    (tmp_path / "1.sql").write_text("CREATE TABLE IF NOT EXISTS a (x int);\nCREATE OR REPLACE VIEW b AS SELECT 1;\n")
    assert obs.migration_tables(tmp_path) == {"a", "b"}


def test_data_sources_need_a_uid_and_a_compose_host(compose):
    good = {"datasources": [{"name": "P", "uid": "p", "url": "http://prometheus:9090"}, {"uid": "q", "url": "db:5432"}]}
    assert obs.datasource_problems(good, compose) == []
    bad = {"datasources": [{"name": "P", "url": "http://localhost:9090"}]}
    assert obs.datasource_problems(bad, compose) == [
        "data source P: needs a uid",
        "data source P: localhost is not a compose service",
    ]


def test_dashboard_provider_reads_the_mounted_folder(compose, tmp_path):
    providers = {"providers": [{"type": "file", "options": {"path": "/var/lib/grafana/dashboards"}}]}
    assert obs.provider_problems(providers, compose, tmp_path, "grafana", tmp_path / "dashboards") == []
    providers["providers"][0]["options"]["path"] = "/etc/dashboards"
    assert obs.provider_problems(providers, compose, tmp_path, "grafana", tmp_path / "dashboards")
