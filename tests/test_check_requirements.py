"""scripts/check_requirements.py: markers evaluated per platform, and pip's outcomes told apart offline."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("check_requirements", ROOT / "scripts" / "check_requirements.py")
check = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = check  # dataclasses look their module up there
SPEC.loader.exec_module(check)

TARGETS = {target.name: target for target in check.TARGETS}


def requirements(path: Path = ROOT / "requirements.txt") -> list[Requirement]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [Requirement(line) for line in lines if line]


@pytest.mark.parametrize(
    ("target", "build"),
    [("Linux x86_64", "tensorflow-cpu"), ("Linux aarch64", "tensorflow"), ("macOS arm64", "tensorflow")],
)
def test_each_platform_gets_exactly_one_tensorflow_build(target, build):
    """Evaluated with packaging for the target (not this machine), the markers keep one TensorFlow pin:
    tensorflow-cpu on Linux x86-64, where it has wheels, and tensorflow on Linux aarch64 and macOS."""
    environment = check.marker_environment(TARGETS[target], "3.11")
    kept = [req for req in requirements() if req.marker is None or req.marker.evaluate(environment)]
    tensorflows = [req for req in kept if req.name.startswith("tensorflow")]
    assert [req.name for req in tensorflows] == [build]
    assert str(tensorflows[0].specifier) == "==2.21.0"
    assert all(str(req.specifier).startswith("==") for req in kept)  # every version pinned


def test_marker_environment_describes_the_target_not_this_machine():
    """The macOS target's environment makes a darwin/arm64 marker true and a linux one false."""
    environment = check.marker_environment(TARGETS["macOS arm64"], "3.13")
    assert Marker('sys_platform == "darwin" and platform_machine == "arm64"').evaluate(environment)
    assert not Marker('sys_platform == "linux"').evaluate(environment)
    assert Marker('python_version >= "3.13"').evaluate(environment)


def fake_pip(tmp_path: Path, stderr: str = "", status: int = 0, environment: dict | None = None) -> str:
    """An executable that answers like `python -c CODE ENV install ... --report FILE` would."""
    script = tmp_path / "fake_pip.py"
    script.write_text(
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        "target_env = json.loads(args[2])\n"
        f"sys.stderr.write({stderr!r})\n"
        f"if {status}:\n    sys.exit({status})\n"
        "report = args[args.index('--report') + 1]\n"
        f"environment = {environment!r} or target_env\n"
        "item = {'metadata': {'name': 'numpy', 'version': '2.4.6'},"
        " 'download_info': {'url': 'https://x/numpy-2.4.6-cp311-cp311-macosx_14_0_arm64.whl'}}\n"
        "json.dump({'environment': environment, 'install': [item]}, open(report, 'w'))\n"
    )
    launcher = tmp_path / "python"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


def test_a_resolved_target_lists_its_wheels(tmp_path):
    """pip's report becomes name==version -> wheel file, after checking pip used the target's markers."""
    result = check.resolve(TARGETS["macOS arm64"], "3.11", python=fake_pip(tmp_path))
    assert result["status"] == "resolved"
    assert result["packages"] == {"numpy==2.4.6": "numpy-2.4.6-cp311-cp311-macosx_14_0_arm64.whl"}


def test_markers_evaluated_for_this_machine_are_caught(tmp_path):
    """A report whose environment is not the target's (pip ignoring the marker patch) is an error."""
    python = fake_pip(tmp_path, environment={"sys_platform": "linux"})
    with pytest.raises(RuntimeError, match="macOS arm64"):
        check.resolve(TARGETS["macOS arm64"], "3.11", python=python)


def test_a_missing_wheel_is_impossible_and_a_silent_index_is_unreachable(tmp_path):
    """'No matching distribution' alone is a real defect; with connection errors it is the network."""
    missing = "ERROR: No matching distribution found for tensorflow-cpu==2.21.0\n"
    result = check.resolve(TARGETS["Linux aarch64"], "3.11", python=fake_pip(tmp_path, missing, 1))
    assert result["status"] == "impossible" and "tensorflow-cpu==2.21.0" in result["detail"]
    offline = "WARNING: Retrying after connection broken by 'NewConnectionError(...)'\n" + missing
    result = check.resolve(TARGETS["Linux aarch64"], "3.11", python=fake_pip(tmp_path, offline, 1))
    assert result["status"] == "unreachable" and "NewConnectionError" in result["detail"]


def test_main_caches_success_and_never_fails_on_an_unreachable_index(tmp_path, monkeypatch, capsys):
    """Exit 1 only for an impossible pin; an unreachable index exits 0 uncached; success is cached."""
    monkeypatch.setattr(check, "CACHE", tmp_path / "resolved.json")
    outcome = {"status": "unreachable", "detail": "ReadTimeoutError"}
    monkeypatch.setattr(
        check, "resolve", lambda target, version, python: outcome | {"target": target.name, "python": version}
    )
    assert check.main([]) == 0 and not check.CACHE.exists()
    assert "WARNING" in capsys.readouterr().out
    outcome = {"status": "impossible", "detail": "No matching distribution"}
    assert check.main([]) == 1 and not check.CACHE.exists()
    outcome = {"status": "resolved", "detail": "1 packages", "packages": {}}
    assert check.main([]) == 0
    assert json.loads(check.CACHE.read_text())["fingerprint"] == check.fingerprint()
    outcome = {"status": "impossible", "detail": "not asked: the cache answers"}
    assert check.main([]) == 0 and "(cached)" in capsys.readouterr().out
    assert check.main(["--refresh"]) == 1
