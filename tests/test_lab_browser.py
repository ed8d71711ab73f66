"""The real user path: `make lab`'s server, a browser, Run All on the first notebook.

Starts JupyterLab through scripts/lab.sh (the script `make lab` runs) on a copy of notebooks/,
opens 00_start_here.ipynb in headless Chromium, waits for the kernel, runs all cells and checks
that every cell ran, nothing raised, and a matplotlib figure rendered. Skips on a laptop without
Chromium or playwright; fails in CI (CI=true), which must provide both.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_or_skip

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = "/usr/bin/chromium"
LAB_SH = REPO_ROOT / "scripts" / "lab.sh"
START_NOTEBOOK = "00_start_here.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
SERVER_START_S = 120
KERNEL_IDLE_S = 180
RUN_ALL_S = 420

# True when every non-empty code cell of the visible notebook shows an execution number, or when
# one raised (Run All stops there) and none is still running.
RUN_ALL_FINISHED_JS = r"""() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  const prompt = c => c.querySelector('.jp-InputArea-prompt')?.textContent ?? '';
  const cells = [...panel.querySelectorAll('.jp-CodeCell')]
    .filter(c => (c.querySelector('.jp-InputArea-editor')?.textContent ?? '').trim() !== '');
  if (cells.some(c => prompt(c).includes('*'))) return false;
  const raised = [...panel.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .some(o => o.textContent.includes('Traceback') || /\w*Error\b/.test(o.textContent));
  return raised || (cells.length > 0 && cells.every(c => /\[\d+\]/.test(prompt(c))));
}"""
ERROR_TEXT = re.compile(r"Traceback|\w*Error\b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer {url} in {SERVER_START_S}s:\n{log.read_text()[-3000:]}")


def start_lab(
    notebook_dir: Path, work: Path, port: int, token: str
) -> tuple[subprocess.Popen, Path]:
    """Start JupyterLab the way `make lab` does, isolated from the user's Jupyter settings."""
    for sub in ("config", "data", "runtime", "workspaces", "settings"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PORT=str(port), NOTEBOOK_DIR=str(notebook_dir),
               START_NOTEBOOK=START_NOTEBOOK, JUPYTER_CONFIG_DIR=str(work / "config"),
               JUPYTER_DATA_DIR=str(work / "data"), JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    env.pop("MPLBACKEND", None)  # a user's kernel draws inline; conftest's Agg would hide figures
    if (Path(sys.prefix) / "bin" / "jupyter").exists():
        env["VENV"] = sys.prefix  # the environment running the tests
    log = work / "lab.log"
    args = ["--no-browser", f"--IdentityProvider.token={token}",
            f"--LabApp.workspaces_dir={work / 'workspaces'}",
            f"--LabApp.user_settings_dir={work / 'settings'}"]
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", str(LAB_SH), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return proc, log


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def click_menu(page, menu: str, item: str) -> None:
    """Click `item` in the main menu bar's `menu`, as a user would."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu").get_by_text(item, exact=True).click()


def run_all_in_browser(notebook_dir: Path, notebook: str, work: Path) -> Path:
    """Open `notebook` in JupyterLab in Chromium, Run All, check the outputs; returns a
    screenshot path. Fails the test with what went wrong."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    port, token = free_port(), "mt-browser-test-token"
    proc, log = start_lab(notebook_dir, work, port, token)
    screenshot = work / "lab.png"
    try:
        wait_for_server(proc, f"http://127.0.0.1:{port}/api/status?token={token}", log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(60_000)
                page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook}?token={token}")
                idle = page.get_by_text(re.compile(r"ipykernel\) \| Idle"))
                try:
                    idle.wait_for(timeout=KERNEL_IDLE_S * 1000)  # clicks before this are lost
                    # Clear first, so execution numbers saved in the file cannot pass for a run.
                    click_menu(page, "Edit", "Clear Outputs of All Cells")
                    click_menu(page, "Run", "Run All Cells")
                    page.wait_for_function(RUN_ALL_FINISHED_JS, timeout=RUN_ALL_S * 1000,
                                           polling=1000)
                    idle.wait_for(timeout=RUN_ALL_S * 1000)
                except PlaywrightTimeout as err:
                    page.screenshot(path=str(screenshot))
                    pytest.fail(f"{err.message.splitlines()[0]}; screenshot: {screenshot}\n"
                                f"server log tail:\n{log.read_text()[-2000:]}")
                page.screenshot(path=str(screenshot))
                print(f"screenshot of the executed notebook: {screenshot}")
                stderr_texts = page.locator(
                    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
                ).all_inner_texts()
                errors = [t for t in stderr_texts if ERROR_TEXT.search(t)]
                assert not errors, f"error output in the notebook:\n{errors[0][-3000:]}"
                images = page.locator(".jp-OutputArea-output img")
                assert images.count() >= 1, "no image output (matplotlib figure) rendered"
                widths = images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
                assert max(widths) > 0, "image outputs are present but none loaded"
            finally:
                browser.close()
    finally:
        stop(proc)
    return screenshot


def test_start_here_runs_all_cells_in_jupyterlab(tmp_path):
    require_or_skip(Path(CHROMIUM).exists(), f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require_or_skip(False, "the playwright Python package (pip install -e '.[dev]')")
    source = REPO_ROOT / "notebooks" / START_NOTEBOOK
    assert source.is_file(), f"{source} is missing"
    # Work on a copy: running cells must never touch the committed notebooks.
    notebook_dir = tmp_path / "notebooks"
    shutil.copytree(REPO_ROOT / "notebooks", notebook_dir,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    run_all_in_browser(notebook_dir, START_NOTEBOOK, tmp_path / "lab")
