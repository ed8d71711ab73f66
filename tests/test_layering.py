"""The package's one-way data flow, checked by reading every module's imports with ``ast``.

Rules:
- the model core (config, utils, positional, masks, attention, layers, model) imports nothing
  from the later stages (tokenizer, tasks, batching, trainer, recorder, decoding, viz, widgets)
  and no display library (ipywidgets, anywidget, plotly, matplotlib, IPython);
- no module imports ipywidgets at import time except ``minitransformer/viz/widgets*``;
- ``import minitransformer`` loads neither ipywidgets, plotly nor matplotlib.pyplot.
Modules are discovered from the file system, so new modules are checked without editing this file.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "minitransformer"
PACKAGE = "minitransformer"

CORE = {"config", "utils", "positional", "masks", "attention", "layers", "model"}
LATER_STAGES = {
    "tokenizer", "tokenizers", "tasks", "batching", "trainer", "recorder", "decoding", "viz",
    "widgets",
}
DISPLAY_LIBRARIES = {"ipywidgets", "anywidget", "plotly", "matplotlib", "IPython"}


def module_name(path: Path) -> str:
    """minitransformer/viz/static.py -> minitransformer.viz.static; __init__ -> the package."""
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(tree: ast.AST, *, top_level_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements; with ``top_level_only``, only those run when the module is imported
    (not inside functions, not under ``if TYPE_CHECKING:``)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif top_level_only and (
            isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            or is_type_checking_block(child)
        ):
            continue
        else:
            yield from import_nodes(child, top_level_only=top_level_only)


def imported_modules(
    source: str, module: str, *, is_package: bool, top_level_only: bool = False
) -> set[str]:
    """Absolute names of everything ``source`` imports: ``from .x import y`` in module
    ``minitransformer.model`` gives ``minitransformer.x`` and ``minitransformer.x.y``."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()
    for node in import_nodes(ast.parse(source), top_level_only=top_level_only):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:
            anchor = base[: len(base) - (node.level - 1)]
            target = ".".join(anchor + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names.add(target)
        names.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def imports_of(module: str, path: Path, *, top_level_only: bool = False) -> set[str]:
    return imported_modules(
        path.read_text(encoding="utf-8"),
        module,
        is_package=path.name == "__init__.py",
        top_level_only=top_level_only,
    )


def first_part_inside_package(name: str) -> str | None:
    """minitransformer.viz.static -> 'viz'; outside the package -> None."""
    parts = name.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    return parts[1]


# --------------------------------------------------------------------------- the checker itself


def test_the_import_resolver_understands_relative_imports() -> None:
    source = (
        "import os\n"
        "from . import masks\n"
        "from .trainer import Trainer\n"
        "from ..viz import static\n"
        "def later():\n"
        "    import ipywidgets\n"
        "if TYPE_CHECKING:\n"
        "    import plotly\n"
        "try:\n"
        "    import matplotlib.pyplot as plt\n"
        "except ImportError:\n"
        "    plt = None\n"
    )
    everything = imported_modules(source, "minitransformer.viz.x", is_package=False)
    assert {"os", "minitransformer.viz.masks", "minitransformer.viz.trainer.Trainer",
            "minitransformer.viz.static", "ipywidgets", "plotly"} <= everything
    at_import = imported_modules(
        source, "minitransformer.model", is_package=False, top_level_only=True
    )
    assert "minitransformer.masks" in at_import
    assert "minitransformer.trainer" in at_import
    assert "matplotlib.pyplot" in at_import
    assert "ipywidgets" not in at_import
    assert "plotly" not in at_import
    in_init = imported_modules("from .model import build_model\n", PACKAGE, is_package=True)
    assert "minitransformer.model" in in_init


def test_the_model_core_is_discovered() -> None:
    discovered = set(package_modules())
    missing = {f"{PACKAGE}.{name}" for name in CORE} - discovered
    assert not missing, f"model core modules not found: {sorted(missing)}"


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize("name", sorted(CORE))
def test_the_model_core_imports_no_later_stage(name: str) -> None:
    module = f"{PACKAGE}.{name}"
    path = package_modules().get(module)
    if path is None:
        pytest.skip(f"{module} does not exist")
    imports = imports_of(module, path)  # anywhere in the file, even inside functions
    later = sorted(n for n in imports if first_part_inside_package(n) in LATER_STAGES)
    display = sorted(n for n in imports if n.split(".")[0] in DISPLAY_LIBRARIES)
    assert not later, f"{module} imports later stages: {later}"
    assert not display, f"{module} imports display libraries: {display}"


def may_import_ipywidgets(module: str) -> bool:
    parts = module.split(".")
    return len(parts) >= 3 and parts[1] == "viz" and parts[2].startswith("widgets")


def test_only_widget_modules_import_ipywidgets_at_import_time() -> None:
    offenders = {}
    for module, path in package_modules().items():
        if may_import_ipywidgets(module):
            continue
        imports = imports_of(module, path, top_level_only=True)
        eager = sorted(n for n in imports if n.split(".")[0] in {"ipywidgets", "anywidget"})
        if eager:
            offenders[module] = eager
    assert not offenders, f"import these lazily (inside functions): {offenders}"


def test_importing_the_package_loads_no_display_library() -> None:
    code = (
        "import sys, minitransformer\n"
        "loaded = [m for m in ('ipywidgets', 'plotly', 'matplotlib.pyplot') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
