#!/usr/bin/env python
"""Make notebooks commit-clean: no outputs, no execution counts, no widget state.

    python scripts/strip_notebooks.py                 # strip notebooks/*.ipynb in place
    python scripts/strip_notebooks.py a.ipynb b.ipynb # strip these
    python scripts/strip_notebooks.py --check         # list unclean notebooks, exit 1 if any

tests/test_notebooks.py uses `problems()` from here, so the test and the tool agree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """What keeps `nb` from being commit-clean, one line per problem (empty when clean)."""
    found = []
    if "widgets" in nb.metadata:
        found.append("notebook metadata has 'widgets' (saved widget state)")
    for index, cell in enumerate(nb.cells):
        volatile = [key for key in VOLATILE_CELL_METADATA if key in cell.metadata]
        if volatile:
            found.append(f"cell {index} has volatile metadata {volatile}")
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {index} has {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {index} has execution_count {cell.execution_count}")
    return found


def strip(nb: nbformat.NotebookNode) -> bool:
    """Remove outputs, execution counts, widget state and run metadata; True if anything changed."""
    changed = bool(problems(nb))
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/)")
    parser.add_argument("--check", action="store_true", help="report only; exit 1 if unclean")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    unclean = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        found = problems(nb)
        if not found:
            continue
        unclean += 1
        if args.check:
            print(f"{path}: " + "; ".join(found))
        else:
            strip(nb)
            nbformat.validate(nb)
            nbformat.write(nb, path)
            print(f"stripped {path}")
    return 1 if args.check and unclean else 0


if __name__ == "__main__":
    sys.exit(main())
