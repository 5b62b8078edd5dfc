"""Every image builds from paths that exist and starts the console script its package declares."""

import pytest
from checks import (
    DEPLOYABLES,
    REPO_ROOT,
    dockerfile_copy_problems,
    dockerfile_env_names,
    dockerignore_patterns,
    dockerignore_problems,
    entrypoint_problems,
    env_problems,
    non_root_problems,
    settings_env_names,
)

by_name = pytest.mark.parametrize("deployable", DEPLOYABLES, ids=lambda d: d.name)


@by_name
def test_copied_paths_exist_in_the_context(deployable):
    assert dockerfile_copy_problems(REPO_ROOT / deployable.dockerfile, REPO_ROOT) == []


@by_name
def test_entrypoint_is_the_packages_console_script(deployable):
    assert entrypoint_problems(REPO_ROOT / deployable.dockerfile, REPO_ROOT / deployable.pyproject) == []


@by_name
def test_runs_as_non_root(deployable):
    assert non_root_problems(REPO_ROOT / deployable.dockerfile) == []


@by_name
def test_env_defaults_name_real_settings(deployable):
    own = [n for n in dockerfile_env_names(REPO_ROOT / deployable.dockerfile) if n.startswith(deployable.env_prefix)]
    assert env_problems(deployable.name, own, deployable.env_prefix, settings_env_names(deployable)) == []


def test_dockerignore_keeps_local_state_out_of_the_context():
    required = [".venv", ".git", ".kestrel", "x/__pycache__", ".pytest_cache"]
    assert dockerignore_problems(dockerignore_patterns(REPO_ROOT), required) == []
