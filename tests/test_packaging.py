"""Packaging, environment and command wiring: the files a fresh machine and CI depend on."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_or_skip
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the dev extra installs tomli
    import tomli as tomllib

PYPROJECT = REPO_ROOT / "pyproject.toml"
ENV_YML = REPO_ROOT / "environment.yml"
MAKEFILE = REPO_ROOT / "Makefile"
CI_RUN = REPO_ROOT / ".ci" / "run"
LAB_SH = REPO_ROOT / "scripts" / "lab.sh"
ENSURE_VENV_SH = REPO_ROOT / "scripts" / "ensure_venv.sh"


def load_pyproject() -> dict:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


def parse_environment_yml(text: str) -> dict:
    """Parse the simple structure environment.yml uses (no PyYAML needed).

    Returns {"name": str, "channels": [str], "dependencies": [str], "pip": [str]} where
    `pip` holds the entries of the `- pip:` list, comments stripped.
    """
    out: dict = {"name": None, "channels": [], "dependencies": [], "pip": []}
    section = None
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        body = line.strip()
        if indent == 0:
            key, _, value = body.partition(":")
            section = key
            if key == "name":
                out["name"] = value.strip()
            continue
        if not body.startswith("- "):
            raise ValueError(f"environment.yml: unexpected line {raw!r}")
        item = body[2:].strip()
        if section == "channels":
            out["channels"].append(item)
        elif section == "dependencies" and item == "pip:":
            section = "pip"
        elif section == "dependencies":
            out["dependencies"].append(item)
        elif section == "pip":
            out["pip"].append(item)
    return out


def requirement_map(lines: list[str]) -> dict[str, str]:
    """{normalised name: specifier} for requirement lines, ignoring pip options and `-e`."""
    reqs = [Requirement(x) for x in lines if not x.startswith("-")]
    return {canonicalize_name(r.name): str(r.specifier) for r in reqs}


def conda_pip_and_project_deps() -> tuple[dict[str, str], dict[str, str]]:
    project = load_pyproject()["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["text"]
    env = parse_environment_yml(ENV_YML.read_text())
    return requirement_map(env["pip"]), requirement_map(declared)


# --- pyproject.toml ---------------------------------------------------------------------------


def test_pyproject_declares_the_package():
    data = load_pyproject()
    project = data["project"]
    assert project["name"] == "minitransformer"
    assert project["requires-python"] == ">=3.10"
    assert data["tool"]["setuptools"]["packages"]["find"]["include"] == ["minitransformer*"]
    assert "**/*.json" in data["tool"]["setuptools"]["package-data"]["minitransformer"]
    assert set(project["optional-dependencies"]) >= {"text", "dev"}


def test_torch_requirement_admits_the_pinned_cpu_wheel():
    deps = requirement_map(load_pyproject()["project"]["dependencies"])
    spec = Requirement(f"torch{deps['torch']}").specifier
    for version in ("2.3.0", "2.13.0", "2.14.1"):
        assert spec.contains(version), f"torch specifier {spec} excludes {version}"
    assert not spec.contains("2.2.0")


@pytest.mark.parametrize("group", ["dependencies", "text", "dev"])
def test_installed_versions_satisfy_the_declared_bounds(group):
    project = load_pyproject()["project"]
    lines = project["dependencies"] if group == "dependencies" else (
        project["optional-dependencies"][group]
    )
    checked = 0
    for line in lines:
        req = Requirement(line)
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            if group == "dependencies":
                pytest.fail(f"core dependency {req.name} is not installed")
            continue  # an extra this environment did not install
        assert req.specifier.contains(Version(installed).base_version, prereleases=True), (
            f"{req.name} {installed} is installed but pyproject.toml asks for {req.specifier}"
        )
        checked += 1
    if group == "dependencies":
        assert checked == len(lines)


def test_pytest_and_ruff_config():
    tool = load_pyproject()["tool"]
    ini = tool["pytest"]["ini_options"]
    assert ini["testpaths"] == ["tests"]
    assert {m.split(":")[0] for m in ini["markers"]} >= {"browser", "slow"}
    assert int(ini["timeout"]) > 0
    assert tool["ruff"]["line-length"] == 100
    assert tool["ruff"]["target-version"] == "py310"
    assert set(tool["ruff"]["lint"]["select"]) >= {"E", "F", "W", "I", "B", "UP"}


# --- environment.yml --------------------------------------------------------------------------


def test_environment_yml_structure():
    env = parse_environment_yml(ENV_YML.read_text())
    assert env["name"] == "minitransformer"
    assert env["channels"] == ["conda-forge"]
    assert "python>=3.10" in env["dependencies"]
    assert "pip" in env["dependencies"]
    assert "-e .[text]" in env["pip"], "environment.yml must install the project itself"


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    conda, declared = conda_pip_and_project_deps()
    only_conda = sorted(set(conda) - set(declared))
    only_pyproject = sorted(set(declared) - set(conda))
    assert not only_conda and not only_pyproject, (
        f"environment.yml only: {only_conda}; pyproject.toml (deps + text extra) only: "
        f"{only_pyproject}"
    )


def test_environment_yml_uses_the_same_version_bounds_as_pyproject():
    conda, declared = conda_pip_and_project_deps()
    differ = {n: (conda[n], declared[n]) for n in conda.keys() & declared.keys()
              if conda[n] != declared[n]}
    assert not differ, f"bounds differ (environment.yml, pyproject.toml): {differ}"


def test_environment_parser_sees_a_missing_dependency():
    text = ENV_YML.read_text().replace("      - numpy", "      # - numpy")
    conda = requirement_map(parse_environment_yml(text)["pip"])
    assert "numpy" not in conda and "torch" in conda


# --- Makefile and .ci/run ---------------------------------------------------------------------


def make_target_recipe(target: str) -> list[str]:
    lines = MAKEFILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{target}\s*:", line))
    recipe = []
    for line in lines[start + 1:]:
        if line.startswith("\t"):
            recipe.append(line.strip())
        elif line.strip() and not line.startswith("#"):
            break
    return recipe


def test_ci_run_calls_the_makefile_test_target():
    assert CI_RUN.stat().st_mode & stat.S_IXUSR, ".ci/run must be executable"
    text = CI_RUN.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    commands = [ln.strip() for ln in text.splitlines()
                if ln.strip() and not ln.strip().startswith("#")]
    assert "export CI=true" in commands
    assert commands[-1] == "make test"


def test_make_test_sets_up_then_runs_pytest_and_ruff():
    header = next(ln for ln in MAKEFILE.read_text().splitlines() if ln.startswith("test:"))
    assert "setup" in header.split(":", 1)[1].split()
    recipe = " ".join(make_target_recipe("test"))
    assert "pytest" in recipe and "ruff check ." in recipe
    assert "ensure_chromium.sh" in recipe


def test_make_lab_uses_the_script_the_browser_test_uses():
    recipe = " ".join(make_target_recipe("lab"))
    assert "scripts/lab.sh" in recipe and "$(LAB_ARGS)" in recipe
    browser_test = (REPO_ROOT / "tests" / "test_lab_browser.py").read_text()
    assert '"scripts" / "lab.sh"' in browser_test


def test_make_dry_run_lists_the_setup_step():
    require_or_skip(_has("make"), "GNU make")
    out = subprocess.run(["make", "-n", "test"], cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert "scripts/ensure_venv.sh" in out
    assert out.index("ensure_venv.sh") < out.index("pytest")


def _has(program: str) -> bool:
    from shutil import which
    return which(program) is not None


# --- scripts/lab.sh ---------------------------------------------------------------------------


def lab_dry_run(tmp_path: Path, *args: str, **env: str) -> tuple[str, list[str]]:
    """Run scripts/lab.sh in dry-run mode; returns (MT_DEVICE, argv)."""
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True, exist_ok=True)
    fake_jupyter = venv_bin / "jupyter"
    fake_jupyter.write_text("#!/bin/sh\nexit 0\n")
    fake_jupyter.chmod(0o755)
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir(exist_ok=True)
    (nb_dir / "00_start_here.ipynb").write_text("{}")
    full_env = {k: v for k, v in os.environ.items() if k not in ("MT_DEVICE", "PORT")}
    full_env.update(VENV=str(tmp_path / "venv"), NOTEBOOK_DIR=str(nb_dir), LAB_DRY_RUN="1", **env)
    out = subprocess.run(["bash", str(LAB_SH), *args], capture_output=True, text=True,
                         env=full_env, check=True).stdout.splitlines()
    device = out[0].removeprefix("MT_DEVICE=")
    assert out[1] == str(fake_jupyter)
    return device, out[2:]


def test_lab_binds_localhost_with_token_auth_and_opens_the_first_notebook(tmp_path):
    device, argv = lab_dry_run(tmp_path)
    assert device == "cpu"
    assert argv[0] == "lab"
    assert "--ip=127.0.0.1" in argv and "--port=8888" in argv
    assert argv[-1] == str(tmp_path / "nbs" / "00_start_here.ipynb")
    assert ("--allow-root" in argv) == (os.getuid() == 0)
    joined = " ".join(argv)
    for disabling in ("token=''", 'token=""', "token= ", "disable_check_xsrf", "password=''"):
        assert disabling not in joined + " "
    assert not any(a.rstrip("'\"").endswith(".token=") for a in argv)


def test_lab_respects_user_device_port_and_extra_args(tmp_path):
    device, argv = lab_dry_run(tmp_path, "--no-browser", MT_DEVICE="cuda", PORT="9123")
    assert device == "cuda"
    assert "--port=9123" in argv
    assert argv[-1] == "--no-browser"


# --- scripts/ensure_venv.sh -------------------------------------------------------------------

FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for a venv's python: records pip calls, fakes torch, runs real Python for the rest.
echo "$*" >> "$FAKE_LOG"
if [ "$1" = "-c" ] && [[ "$2" == *find_spec* ]]; then
    [ -f "$FAKE_DIR/torch_installed" ] && exit 0 || exit 1
fi
if [ "$1 $2" = "-m pip" ]; then
    case "$*" in
        *"torch==2.13.0"*) [ -n "${FAKE_PINNED_OK:-}" ] || exit 1
                           touch "$FAKE_DIR/torch_installed";;
        *"torch>=2.3"*) touch "$FAKE_DIR/torch_installed";;
    esac
    exit 0
fi
exec "$REAL_PYTHON" "$@"
"""


def run_ensure_venv(tmp_path: Path, **env: str) -> list[str]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    fake = venv / "bin" / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    log.write_text("")
    full_env = {k: v for k, v in os.environ.items() if k not in ("EXTRAS", "FAKE_PINNED_OK")}
    full_env.update(VENV=str(venv), FAKE_LOG=str(log), FAKE_DIR=str(tmp_path),
                    REAL_PYTHON=sys.executable, **env)
    subprocess.run(["bash", str(ENSURE_VENV_SH)], env=full_env, check=True, capture_output=True)
    return [ln for ln in log.read_text().splitlines() if ln.startswith("-m pip")]


def test_setup_falls_back_to_any_recent_torch_and_installs_the_project_once(tmp_path):
    first = run_ensure_venv(tmp_path)
    assert [c.split()[-1] for c in first] == ["torch==2.13.0", "torch>=2.3", ".[dev,text]"]
    assert (tmp_path / "venv" / ".minitransformer-install-stamp").is_file()
    assert run_ensure_venv(tmp_path) == [], "a second run with nothing changed must install nothing"
    again = run_ensure_venv(tmp_path, EXTRAS="dev")
    assert [c.split()[-1] for c in again] == [".[dev]"]


def test_setup_uses_the_pinned_torch_when_available(tmp_path):
    calls = run_ensure_venv(tmp_path, FAKE_PINNED_OK="1")
    assert [c.split()[-1] for c in calls] == ["torch==2.13.0", ".[dev,text]"]


# --- tests/conftest.py ------------------------------------------------------------------------


def test_require_or_skip_skips_on_a_laptop_and_fails_in_ci(monkeypatch):
    require_or_skip(True, "always there")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_or_skip(False, "a browser")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="a browser"):
        require_or_skip(False, "a browser")
