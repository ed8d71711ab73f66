"""Every notebook in notebooks/: committed clean, shaped for class, runs top to bottom offline.

Execution uses a kernel started from this interpreter (`sys.executable`), with MT_FAST=1 (short
trainings) and MT_DEVICE=cpu, and the repository on PYTHONPATH. Each notebook runs once per
session; the checks on its outputs share that run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from functools import cache
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CDN_MARKERS = ('<script src="http', "<script src='http", "cdn.plot.ly", "cdnjs", "unpkg",
               "jsdelivr")
CELL_TIMEOUT_S = 600

notebook_param = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])


def load_strip_tool():
    """scripts/strip_notebooks.py, so the test and the stripping tool share one definition."""
    spec = importlib.util.spec_from_file_location("strip_notebooks",
                                                  ROOT / "scripts" / "strip_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MT_FAST="1", MT_DEVICE="cpu", MPLBACKEND="module://matplotlib_inline.backend_inline")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run `nb` top to bottom (in place) in a fresh kernel of this interpreter, cwd notebooks/."""
    import tempfile

    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as kernels:
        # A private kernelspec whose argv is sys.executable: immune to user-level kernels.
        write_kernel_spec(os.path.join(kernels, "mt-python"))
        spec_manager = KernelSpecManager(kernel_dirs=[kernels], ensure_native_kernel=False)
        manager = KernelManager(kernel_name="mt-python", kernel_spec_manager=spec_manager)
        client = NotebookClient(
            nb, km=manager, timeout=CELL_TIMEOUT_S, startup_timeout=120,
            resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        )
        client.execute(env=kernel_env())
    return nb


@cache
def executed(path: Path) -> nbformat.NotebookNode:
    """The notebook at `path`, executed once per test session."""
    return execute(nbformat.read(path, as_version=4))


def code_outputs(nb: nbformat.NotebookNode):
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                yield index, output


def test_notebooks_exist():
    assert (NOTEBOOK_DIR / "00_start_here.ipynb") in NOTEBOOKS


# --------------------------------------------------------------------------- static checks


@notebook_param
def test_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert load_strip_tool().problems(nb) == [], (
        f"{path.name} is not commit-clean; run: python scripts/strip_notebooks.py"
    )


@notebook_param
def test_opens_with_markdown_and_has_exercises(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells and nb.cells[0].cell_type == "markdown", "first cell must say what it teaches"
    assert any(cell.cell_type == "markdown" and "Exercises" in cell.source for cell in nb.cells)


@notebook_param
def test_no_cdn_in_source(path):
    text = path.read_text(encoding="utf-8")
    assert [marker for marker in CDN_MARKERS if marker in text] == []


# --------------------------------------------------------------------------- execution


@notebook_param
def test_runs_top_to_bottom_without_errors_or_warnings(path):
    nb = executed(path)  # nbclient raises CellExecutionError on the first failing cell
    problems = []
    for index, output in code_outputs(nb):
        if output.output_type == "error":
            problems.append(f"cell {index}: {output.ename}: {output.evalue}")
        elif output.output_type == "stream" and output.name == "stderr":
            text = output.text
            if any(word in text for word in ("Traceback", "Error", "Warning")):
                problems.append(f"cell {index} stderr: {text.strip()[:300]}")
    assert problems == []


@notebook_param
def test_no_cdn_in_executed_outputs(path):
    nb = executed(path)
    text = json.dumps([output for _, output in code_outputs(nb)])
    assert [marker for marker in CDN_MARKERS if marker in text] == []


def test_kernel_runs_this_interpreter_with_fast_cpu_settings():
    """The executing kernel is this interpreter (with torch and the package), MT_* set."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os, sys, minitransformer\n"
        "print(sys.executable, sys.prefix, os.environ['MT_FAST'], os.environ['MT_DEVICE'])"
    )]
    printed = execute(nb).cells[0].outputs[0].text.split()
    assert printed == [sys.executable, sys.prefix, "1", "cpu"]


def test_strip_tool_cleans_a_dirty_notebook(tmp_path):
    tool = load_strip_tool()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("1 + 1", execution_count=3, outputs=[
            nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)]),
    ])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00Z"}
    path = tmp_path / "dirty.ipynb"
    nbformat.write(nb, path)

    assert len(tool.problems(nbformat.read(path, as_version=4))) == 4
    assert tool.main(["--check", str(path)]) == 1
    assert tool.main([str(path)]) == 0
    cleaned = nbformat.read(path, as_version=4)
    assert tool.problems(cleaned) == []
    assert cleaned.cells[1].source == "1 + 1"  # sources untouched
    assert tool.main(["--check", str(path)]) == 0
