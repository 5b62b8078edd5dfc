"""The loop's shared recipe: settings the services read, the rules file, the champion's copies (no servers)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kestrel.common.settings import GLOBAL_PREFIX
from kestrel.devstack.loop import champion_copy, loop_settings, triton_repository, write_rules
from kestrel.devstack.services import SERVICES


def test_every_loop_setting_is_read_by_some_service(tmp_path: Path) -> None:
    read = set()
    for service in SERVICES:
        fields = service.settings_class.model_fields
        read |= {f"{p}{name.upper()}" for name in fields for p in (service.prefix, GLOBAL_PREFIX)}
    assert set(loop_settings(tmp_path)) <= read


def test_the_rules_file_is_where_the_settings_say_and_holds_the_performance_rule(tmp_path: Path) -> None:
    path = write_rules(tmp_path / "loop")
    assert loop_settings(tmp_path / "loop")["KESTREL_ALERTING_RULES_FILE"] == str(path)
    assert [r["alert"] for r in yaml.safe_load(path.read_text())["rules"]] == ["PerformanceDegraded"]


def test_the_champion_copy_is_the_checked_in_version_1_under_the_loops_model_name(tmp_path: Path) -> None:
    folder = champion_copy(tmp_path / "artifacts", "fraud_x")
    assert folder == tmp_path / "artifacts" / "fraud_x" / "1"
    assert json.loads((folder / "manifest.json").read_text())["model_name"] == "fraud_x"
    assert "performance" in json.loads((folder / "reference.json").read_text())
    repo = triton_repository(tmp_path / "models", "fraud_x")
    assert 'name: "fraud_x"' in (repo / "fraud_x" / "config.pbtxt").read_text()
