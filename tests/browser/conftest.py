"""Real JupyterLab driven by headless Debian chromium through Playwright.

A session fixture starts ``jupyter lab`` in a temporary root folder with its own config,
settings and runtime folders, so the tests never see or change the user's Jupyter setup.
Pages are opened by URL with the server token, and the helpers act the way a user does
(menus, keyboard), reading what JupyterLab renders.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from helpers import write_notebook  # noqa: F401 - the benchmarks import it from here

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("MLPIPE_CHROMIUM", "/usr/bin/chromium"))
START_TIMEOUT = 90


def _ensure_browser_tools():
    """Chromium comes from apt (never from ``playwright install``); the rest from pip.

    A lock keeps parallel test workers from running apt at the same time. Without root (or
    password-less sudo) chromium cannot be installed, and the browser tests skip saying so."""
    with open(Path(tempfile.gettempdir()) / "mlpipe-install-browser.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not CHROMIUM.exists() or not _have_python_parts():
            subprocess.run(["bash", str(REPO / "scripts" / "install_browser.sh")],
                           env={**os.environ, "PYTHON": sys.executable})
    if not CHROMIUM.exists():
        reason = f"no browser at {CHROMIUM} and it could not be installed: run scripts/install_browser.sh as root"
        if os.environ.get("CI") == "true":  # CI must never turn green by skipping a real engine
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    if not _have_python_parts():
        pytest.fail("playwright, jupyterlab or ipywidgets is missing: pip install -e '.[test]'")


def _have_python_parts() -> bool:
    importlib.invalidate_caches()  # they may have just been installed
    try:
        import ipywidgets  # noqa: F401
        import jupyterlab  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def _ensure_python3_kernelspec():
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``; kernels run in their own sessions, so a group kill misses them."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class LabServer:
    """A running ``jupyter lab``: its base URL, token and root folder, plus a tiny REST client."""

    def __init__(self, url: str, token: str, root: Path, log: Path):
        self.url, self.token, self.root, self.log = url, token, root, log

    def api(self, path: str, method: str = "GET", body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path.lstrip("/"), data=data, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def notebook_url(self, name: str) -> str:
        """``reset`` starts from an empty layout, so tabs of earlier tests do not come back."""
        return f"{self.url}lab/tree/{quote(name)}?reset&token={self.token}"

    def kernel_ready(self, name: str) -> bool:
        """The notebook's session has a kernel that is idle and connected to the page."""
        for session in self.api("api/sessions"):
            kernel = session.get("kernel") or {}
            if session.get("path") == name and kernel.get("execution_state") == "idle" \
                    and kernel.get("connections", 0) >= 1:
                return True
        return False

    def stop_all_kernels(self):
        for session in self.api("api/sessions"):
            self.api(f"api/sessions/{session['id']}", method="DELETE")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _write_lab_settings(settings_dir: Path):
    """Keep every cell in the DOM and keep news pop-ups away from the screenshots."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, content in files.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def _build_is_fresh(built: Path) -> bool:
    """The package build (labextension/build_hook.py) stamps its output with the hash of its sources; a
    build by hand (``npm run build``) leaves no stamp, and then it must be newer than its sources."""
    spec = importlib.util.spec_from_file_location("build_hook", REPO / "labextension" / "build_hook.py")
    build_hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_hook)
    stamp = built / build_hook.STAMP
    if stamp.is_file():
        return stamp.read_text().strip() == build_hook.source_hash()
    sources = [REPO / "labextension" / "package.json",
               *(p for d in ("src", "style") for p in (REPO / "labextension" / d).rglob("*") if p.is_file())]
    entries = list((built / "static").glob("remoteEntry.*.js"))
    return bool(entries) and max(e.stat().st_mtime for e in entries) >= max(p.stat().st_mtime for p in sources)


def _fresh_labextension(jupyter_path: Path) -> None:
    """Serve the extension as this checkout builds it (not the copy an earlier install left in the
    environment): a folder first on JUPYTER_PATH wins."""
    built = REPO / "mlpipe_jupyter" / "labextension"
    if not _build_is_fresh(built):
        pytest.fail("The JupyterLab extension is missing or older than its sources: cd labextension && npm run build",
                    pytrace=False)
    (jupyter_path / "labextensions").mkdir(parents=True)
    (jupyter_path / "labextensions" / "mlpipe-jupyter").symlink_to(built, target_is_directory=True)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """Starts JupyterLab on a free port with a random token and stops it (and its kernels) after."""
    _ensure_browser_tools()
    with running_lab(tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@contextlib.contextmanager
def running_lab(base: Path):
    """``jupyter lab`` with its own folders under ``base`` (the benchmarks start it this way too)."""
    _ensure_python3_kernelspec()
    root = base / "root"
    root.mkdir()
    _write_lab_settings(base / "settings")
    _fresh_labextension(base / "jupyter-path")
    token, port = secrets.token_hex(16), _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "IPYTHONDIR": str(base / "ipython"),
        "JUPYTER_CONFIG_PATH": str(REPO / "jupyter-config"),  # the REST API, as the wheel enables it
        "JUPYTER_PATH": os.pathsep.join(filter(None, [str(base / "jupyter-path"), os.environ.get("JUPYTER_PATH")])),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    log = base / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the tests switch themes with its commands
    ]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}/", token, root, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer in {START_TIMEOUT}s:\n{server.log_tail()}")
                time.sleep(0.3)
        yield server
    finally:
        _stop_server(server, process)


def _stop_server(server: LabServer, process: subprocess.Popen):
    """Polite shutdown first (it shuts kernels down too), then kill whatever is left."""
    leftovers = _descendants(process.pid)
    if process.poll() is None:
        try:
            server.api("api/shutdown", method="POST")
        except (urllib.error.URLError, OSError):
            pass
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    for pid in [process.pid, *leftovers]:
        try:
            os.killpg(pid, signal.SIGKILL) if pid == process.pid else os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def browser(lab_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture()
def lab(browser, lab_server, request):
    """A fresh browser tab on the lab server; saves a screenshot when the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1500})
    page = context.new_page()
    page.set_default_timeout(30_000)
    helper = LabPage(page, lab_server)
    yield helper
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        helper.screenshot(f"{request.node.name}-failure")
    context.close()
    lab_server.stop_all_kernels()  # and with them any step still running


class LabPage:
    """What a user does in JupyterLab: open a notebook, run cells, read outputs."""

    def __init__(self, page, server: LabServer):
        self.page, self.server = page, server

    # -- opening -------------------------------------------------------------------------------------------
    def open(self, name: str, timeout: float = 60_000):
        self.page.goto(self.server.notebook_url(name))
        self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=timeout)
        self.wait_kernel_idle(timeout)
        deadline = time.monotonic() + timeout / 1000
        while not self.server.kernel_ready(name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel of {name} never became idle:\n{self.server.log_tail()}")
            time.sleep(0.1)

    @property
    def notebook(self):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first

    def wait_kernel_idle(self, timeout: float = 60_000):
        """Idle with a kernel attached: before the kernel connects the indicator already says idle,
        so the status bar must also name a kernel ("Python 3 (ipykernel) | Idle")."""
        self.page.locator(".jp-StatusBar-TextItem").filter(
            has_text=re.compile(r"^(?!No Kernel).+ \| Idle$")).first.wait_for(timeout=timeout)
        self.page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) '
                          '.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(timeout=timeout)

    # -- cells ---------------------------------------------------------------------------------------------
    def cell(self, index: int):
        return self.notebook.locator(".jp-Cell").nth(index)

    def cell_count(self) -> int:
        return self.notebook.locator(".jp-Cell").count()

    def output(self, index: int):
        return self.cell(index).locator(".jp-OutputArea")

    def output_text(self, index: int) -> str:
        return self.output(index).inner_text()

    def execution_count(self, index: int) -> str:
        """The prompt number, like ``[3]:``; ``[*]:`` while the cell runs."""
        return self.cell(index).locator(".jp-InputPrompt").inner_text().strip()

    def run_all(self):
        """Run > Run All Cells, from the menu bar."""
        self.notebook.click(position={"x": 5, "y": 5})
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        self.page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()

    def run_cell(self, index: int):
        """Click into the cell's editor and press Shift+Enter."""
        self.cell(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")

    def add_cell_and_run(self, source: str):
        """Select the last cell, insert a cell below it (``b``), type ``source`` and run it."""
        last = self.cell_count() - 1
        self.cell(last).locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("b")
        self.cell(last + 1).wait_for()
        self.page.keyboard.press("Enter")
        self.page.keyboard.insert_text(source)
        self.page.keyboard.press("Shift+Enter")
        return last + 1

    # -- artifacts -----------------------------------------------------------------------------------------
    def screenshot(self, name: str, locator=None) -> Path:
        """A PNG in test-artifacts/: of ``locator`` when given, else of the whole page."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        if locator is not None:
            locator.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=True)
        return path

    def set_theme(self, dark: bool):
        """Switch JupyterLab's theme and wait until the page has it."""
        theme = "JupyterLab Dark" if dark else "JupyterLab Light"
        self.page.evaluate("theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme)
        self.page.locator(f'body[data-jp-theme-light="{"false" if dark else "true"}"]').wait_for(state="attached")
        self.page.wait_for_timeout(300)  # the theme's stylesheet settles

    def screenshots(self, name: str, locator=None) -> list[Path]:
        """``name-light.png`` and ``name-dark.png``: what a user sees in either theme. Returns light first
        and leaves the page in the light theme."""
        paths = [self.screenshot(f"{name}-light", locator)]
        try:
            self.set_theme(dark=True)
            paths.append(self.screenshot(f"{name}-dark", locator))
        finally:
            self.set_theme(dark=False)
        return paths
