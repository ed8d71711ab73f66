"""Shared test set-up.

- `import minitransformer` works from the repo root, in this process and in subprocesses
  (kernels, scripts) through PYTHONPATH.
- MPLBACKEND=Agg and MT_FAST=1 unless the caller set them.
- PyTorch uses one thread (MT_TEST_THREADS to change): the tests' models are tiny, and kernels,
  servers and DDP ranks run beside the test process on a 2-core machine.
- `require_or_skip(condition, why)`: the project rule for things CI must provide (Chromium,
  playwright): a missing one SKIPS on a laptop but FAILS when CI=true.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MT_FAST", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by kernels, servers, DDP ranks
torch.set_num_threads(int(os.environ.get("MT_TEST_THREADS", "1")))

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
_pythonpath = os.environ.get("PYTHONPATH", "")
if str(REPO_ROOT) not in _pythonpath.split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), _pythonpath) if p)


def in_ci() -> bool:
    """True when running under CI (env CI=true or CI=1)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_or_skip(condition: bool, why: str) -> None:
    """Go on when `condition` holds; otherwise skip the test, or fail it under CI.

    `why` says what is missing, e.g. "Chromium at /usr/bin/chromium".
    """
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI must provide this, but it is missing: {why}", pytrace=False)
    pytest.skip(f"missing (would fail in CI): {why}")


@pytest.fixture
def require():
    """The `require_or_skip` helper as a fixture: `def test_x(require): require(ok, "why")`."""
    return require_or_skip


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Absolute path of the repository root."""
    return REPO_ROOT
