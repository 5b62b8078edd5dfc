"""Each image installs only what its service needs: the locked install set leaves out the domain libraries' deps."""

import pytest
from checks import REPO_ROOT
from lock_checks import NOT_INSTALLED, install_set, load_lock, unwanted_problems

LOCK = load_lock(REPO_ROOT / "uv.lock")


@pytest.mark.parametrize("image", NOT_INSTALLED)
def test_image_leaves_out_what_its_service_does_not_use(image):
    installed = install_set(LOCK, f"kestrel-{image}")
    assert f"kestrel-{image}" in installed and "kestrel-common" in installed
    assert unwanted_problems(installed, image, NOT_INSTALLED[image]) == []


def test_inference_still_installs_the_triton_client_and_the_domain_libraries():
    installed = install_set(LOCK, "kestrel-inference")
    assert {
        "tritonclient",
        "numpy",
        "redis",
        "kestrel-featureset",
        "kestrel-model",
        "kestrel-online-store",
    } <= installed


def test_install_set_follows_extras_but_not_dev_groups():
    lock = [
        {
            "name": "app",
            "dependencies": [{"name": "lib", "extra": ["fast"]}],
            "dev-dependencies": {"dev": [{"name": "pytest"}]},
        },
        {
            "name": "lib",
            "dependencies": [{"name": "app"}],
            "optional-dependencies": {"fast": [{"name": "speedup"}], "slow": [{"name": "crawl"}]},
        },
        {"name": "speedup"},
        {"name": "crawl"},
        {"name": "pytest"},
    ]
    assert install_set(lock, "app") == {"app", "lib", "speedup"}
    assert unwanted_problems({"app", "speedup"}, "app", ["speedup", "crawl"]) == ["app: installs speedup"]
