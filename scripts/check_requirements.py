"""Checks that the pinned requirements resolve, from wheels only, on every platform we support.

    python scripts/check_requirements.py            # every platform and Python version below
    python scripts/check_requirements.py --refresh  # ignore the cache

For each target it runs `pip install --dry-run --report` with `--platform`, `--python-version`
and `--only-binary=:all:`, so nothing is built or installed. pip evaluates environment markers
(`; sys_platform == "darwin"`) for the machine it runs on, even with `--platform`; here they
are evaluated for the target instead, in ours and in every dependency's requirements, by
giving pip's marker evaluation the target's environment.

Outcomes, and why `make test` can run this on every call:
- resolved: the result is cached under .venv/ by the hash of the requirement files and the
  targets, so later runs take no time and need no network;
- a pin with no wheel for a target: exit status 1 with pip's reason (a real defect, red);
- the package index unreachable or too slow: a warning and exit status 0, because a slow
  registry says nothing about our pins and must not turn CI red; the next run tries again.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")
CACHE = Path(os.environ.get("REQUIREMENTS_CHECK_CACHE", ROOT / ".venv" / "requirements-resolved.json"))
PYTHON_VERSIONS = ("3.11", "3.13")
"""The oldest and newest Python the pins are checked for (the README's "3.11 to 3.13")."""

TIMEOUT_S = 240
"""One target's whole resolution; pip's own per-request timeout is much shorter (below)."""

NETWORK_TROUBLE = (
    "NewConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
    "ProxyError",
    "SSLError",
    "HTTP error 5",
)


@dataclass(frozen=True)
class Target:
    """A platform as pip's --platform tags and as environment markers see it."""

    name: str
    platforms: tuple[str, ...]
    markers: dict


def _linux(machine: str) -> Target:
    # glibc 2.28 and older (Debian 10, Ubuntu 20.04, RHEL 8 and later run these wheels).
    tags = tuple(f"manylinux_2_{minor}_{machine}" for minor in (28, 27, 26, 17)) + (f"manylinux2014_{machine}",)
    markers = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "platform_machine": machine}
    return Target(f"Linux {machine}", tags, markers)


TARGETS = (
    _linux("x86_64"),
    _linux("aarch64"),
    # pip widens macosx_14_0_arm64 to every older macOS 11+ tag, universal2 included.
    Target(
        "macOS arm64",
        ("macosx_14_0_arm64",),
        {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix", "platform_machine": "arm64"},
    ),
)

# Run inside the pip subprocess: every marker pip evaluates sees the target's environment.
PIP_WITH_TARGET_MARKERS = """
import json, sys
from pip._vendor.packaging import markers
environment = markers.default_environment()
environment.update(json.loads(sys.argv[1]))
markers.default_environment = lambda: dict(environment)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def marker_environment(target: Target, python_version: str) -> dict:
    return {
        **target.markers,
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def resolve(target: Target, python_version: str, python: str = sys.executable) -> dict:
    """Resolves the requirement files for one target without installing; returns a summary.

    Returns:
        {"target", "python", "status": "resolved" | "impossible" | "unreachable", "detail",
        and for "resolved" "packages": name==version -> wheel file name}.
    """
    environment = marker_environment(target, python_version)
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [python, "-c", PIP_WITH_TARGET_MARKERS, json.dumps(environment)]
        command += ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report)]
        command += ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp"]
        command += [arg for platform in target.platforms for arg in ("--platform", platform)]
        command += ["--target", str(Path(scratch) / "never-written"), "--timeout", "20", "--retries", "2"]
        for name in REQUIREMENTS:
            command += ["-r", str(ROOT / name)]
        summary = {"target": target.name, "python": python_version}
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return summary | {"status": "unreachable", "detail": f"pip took longer than {TIMEOUT_S} s"}
        errors = "\n".join(line for line in result.stderr.splitlines() if "is ignored: it is neither" not in line)
        if result.returncode != 0:
            trouble = [line for line in errors.splitlines() if any(sign in line for sign in NETWORK_TROUBLE)]
            if trouble:
                return summary | {"status": "unreachable", "detail": trouble[-1].strip()[:200]}
            return summary | {"status": "impossible", "detail": errors.strip()}
        installed = json.loads(report.read_text())
        used = installed["environment"]
        wrong = {key: used.get(key) for key, value in environment.items() if used.get(key) != value}
        if wrong:
            raise RuntimeError(f"pip evaluated markers for {wrong}, not for {target.name}")
        packages = {}
        for item in installed["install"]:
            wheel = item["download_info"]["url"].rsplit("/", 1)[-1]
            packages[f"{item['metadata']['name']}=={item['metadata']['version']}"] = wheel
        return summary | {"status": "resolved", "detail": f"{len(packages)} packages", "packages": packages}


def fingerprint(targets=TARGETS, python_versions=PYTHON_VERSIONS) -> str:
    """What a cached result is valid for: the requirement files, the targets and this script."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for name in REQUIREMENTS:
        digest.update((ROOT / name).read_bytes())
    digest.update(json.dumps([[t.name, t.platforms, t.markers] for t in targets] + list(python_versions)).encode())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--refresh", action="store_true", help="resolve again even when the cache is current")
    parser.add_argument("--python", default=sys.executable, help="the Python whose pip resolves (default: this one)")
    args = parser.parse_args(argv)
    key = fingerprint()
    if not args.refresh and CACHE.is_file():
        try:
            cached = json.loads(CACHE.read_text())
        except ValueError:
            cached = {}
        if cached.get("fingerprint") == key:
            print(f"requirements: resolve on {len(cached['results'])} platform/Python pairs (cached)")
            return 0
    jobs = [(target, version) for target in TARGETS for version in PYTHON_VERSIONS]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(lambda job: resolve(*job, python=args.python), jobs))
    for result in results:
        print(f"requirements: {result['target']}, Python {result['python']}: {result['status']} ({result['detail']})")
    impossible = [result for result in results if result["status"] == "impossible"]
    if impossible:
        print("requirements: some pins have no wheel for a supported platform; see pip's reason above.")
        return 1
    if any(result["status"] == "unreachable" for result in results):
        print("requirements: WARNING: the package index did not answer; not checked this time (not an error).")
        return 0
    CACHE.parent.mkdir(exist_ok=True)
    CACHE.write_text(json.dumps({"fingerprint": key, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
