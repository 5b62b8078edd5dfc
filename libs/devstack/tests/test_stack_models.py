"""The stack serves its own copy of the checked-in models, so a checkout stays clean after `up` (no servers)."""

from __future__ import annotations

from pathlib import Path

from kestrel.devstack.stack import Stack, copy_new_models


def test_the_stack_copies_models_it_lacks_and_keeps_the_versions_it_has(tmp_path: Path) -> None:
    source, target = tmp_path / "checked-in", tmp_path / "state" / "models"
    for model in ("a", "b"):
        (source / model / "1" / "__pycache__").mkdir(parents=True)
        (source / model / "1" / "model.py").write_text("checked in")
    (target / "a" / "2").mkdir(parents=True)
    assert copy_new_models(source, target) == ["b"]
    assert (target / "b" / "1" / "model.py").read_text() == "checked in"
    assert not (target / "b" / "1" / "__pycache__").exists()
    assert not (target / "a" / "1").exists() and (target / "a" / "2").is_dir()


def test_the_stack_serves_and_names_a_repository_in_its_state_dir(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ports={})
    assert stack.triton is not None and stack.triton.model_repository == tmp_path / "models"
    assert stack.env["KESTREL_MODEL_REPOSITORY"] == str(tmp_path / "models")
