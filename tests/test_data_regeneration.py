"""data/ is exactly what `python -m minitransformer.tasks.generate --out data` writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import minitransformer as mt
from minitransformer.tasks.generate import COMMAND, generate_data, main, read_split

MAX_DATA_BYTES = 5_000_000


@pytest.fixture(scope="module")
def data_dir(repo_root: Path) -> Path:
    return repo_root / "data"


@pytest.fixture(scope="module")
def committed_manifest(data_dir: Path) -> dict:
    path = data_dir / "MANIFEST.json"
    assert path.is_file(), f"data/MANIFEST.json is missing; run: {COMMAND}"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    generate_data(out)
    return out


def test_manifest_matches_the_committed_files(data_dir, committed_manifest):
    files = committed_manifest["files"]
    assert set(committed_manifest["tasks"]) == set(mt.list_tasks())
    assert len(files) == 3 * len(mt.list_tasks())
    total = 0
    for rel, entry in files.items():
        data = (data_dir / rel).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], rel
        assert data.count(b"\n") == entry["lines"] and len(data) == entry["bytes"], rel
    assert total < MAX_DATA_BYTES
    on_disk = {str(p.relative_to(data_dir)) for p in (data_dir / "tasks").rglob("*.jsonl")}
    assert on_disk == set(files), "stale or missing files under data/tasks"


def test_regeneration_is_byte_identical(data_dir, committed_manifest, regenerated):
    fresh = json.loads((regenerated / "MANIFEST.json").read_text(encoding="utf-8"))
    assert fresh == committed_manifest, f"data/ is out of date; run: {COMMAND}"
    for rel in ["MANIFEST.json", "README.md", *committed_manifest["files"]]:
        assert (regenerated / rel).read_bytes() == (data_dir / rel).read_bytes(), rel


def test_committed_splits_equal_the_in_memory_tasks(data_dir):
    for name in ("numbers_en_de", "grammar_lm"):
        task = mt.get_task(name)
        for split in ("train", "valid", "test"):
            assert read_split(data_dir / "tasks" / name / f"{split}.jsonl") == task.split(split)


def test_readme_gives_the_regeneration_command(data_dir):
    readme = (data_dir / "README.md").read_text(encoding="utf-8")
    assert COMMAND in readme
    assert all(f"`{name}`" in readme for name in mt.list_tasks())


def test_generation_leaves_other_folders_alone(tmp_path):
    keep = tmp_path / "checkpoints" / "model.safetensors"
    keep.parent.mkdir()
    keep.write_bytes(b"weights")
    stale = tmp_path / "tasks" / "old_task" / "train.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}\n", encoding="utf-8")
    generate_data(tmp_path)
    assert keep.read_bytes() == b"weights"
    assert not stale.exists()


def test_check_mode_names_the_file_that_differs(tmp_path, regenerated, capsys):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(regenerated, copy)
    (copy / "tasks" / "copy" / "valid.jsonl").write_text("edited\n", encoding="utf-8")
    assert main(["--out", str(copy), "--check"]) == 1
    report = capsys.readouterr().out
    assert "tasks/copy/valid.jsonl" in report and "tasks/copy/train.jsonl" not in report


def test_command_line_check_passes_on_the_committed_data(repo_root):
    out = subprocess.run(
        [sys.executable, "-m", "minitransformer.tasks.generate", "--out", "data", "--check"],
        cwd=repo_root, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "up to date" in out.stdout
