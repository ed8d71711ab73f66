"""README.md: the two commands come first, and every Python example in it runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(language: str | None = None) -> list[str]:
    blocks = FENCE.findall(README.read_text())
    return [body for lang, body in blocks if language is None or lang == language]


PYTHON_BLOCKS = code_blocks("python")


def test_readme_has_python_examples():
    assert len(PYTHON_BLOCKS) >= 1


def test_first_code_block_is_the_two_commands():
    first = code_blocks()[0]
    commands = [ln.split("#")[0].strip() for ln in first.splitlines() if ln.strip()]
    assert commands == ["make lab", "make test"]
    assert README.read_text().index("make lab") < README.read_text().index("## ")


def test_readme_lists_every_notebook():
    text = README.read_text()
    missing = [p.name for p in sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
               if p.name not in text]
    assert not missing, f"notebooks not listed in README.md: {missing}"


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_example_runs(index: int, tmp_path: Path):
    script = tmp_path / f"readme_example_{index}.py"
    script.write_text(PYTHON_BLOCKS[index])
    env = dict(os.environ, MT_DEVICE="cpu", MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"README python block {index} failed:\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), "the example should print what it shows"
