#!/usr/bin/env python
"""Execute every demo notebook in binder/ headless, in a fresh venv installed the way Binder installs.

Binder (repo2docker) installs ``binder/requirements.txt`` and then runs ``binder/postBuild`` from the
repository root; this script does the same in a venv, then runs each notebook with nbclient in a
temporary copy of binder/ and exits non-zero on the first cell error of any notebook, printing the
failing cell and its output.

The venv is cached under ``~/.cache/mlpipe-ci/``, keyed by the hash of the files that decide its
contents, but mlpipe-jupyter itself is uninstalled and reinstalled from the work tree on every run.

    python scripts/run_notebooks.py                 # every notebook under binder/
    python scripts/run_notebooks.py binder/quickstart.ipynb
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
CACHE = Path(os.environ.get("MLPIPE_CI_CACHE", Path.home() / ".cache" / "mlpipe-ci"))
VENV_INPUTS = [BINDER / "requirements.txt", BINDER / "postBuild", BINDER / "runtime.txt", REPO / "pyproject.toml"]
CELL_TIMEOUT = 600


def venv_key() -> str:
    digest = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    for path in VENV_INPUTS:
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    return digest.hexdigest()[:16]


def clean_env(venv: Path, home: Path) -> dict:
    """The venv first on PATH, and nothing from the work tree or the user's Jupyter/IPython setup."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        PYTHONNOUSERSITE="1",
        JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        IPYTHONDIR=str(home / "ipython"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


SETUP_LOG = CACHE / "setup.log"


def run(command, **kwargs):
    """A set-up command, its output in SETUP_LOG (pip's download lines are not the demo); on failure
    the log's end is printed and the run stops."""
    with open(SETUP_LOG, "a") as log:
        log.write("+ " + " ".join(str(c) for c in command) + "\n")
        log.flush()
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, **kwargs)
    if result.returncode:
        tail = "\n".join(SETUP_LOG.read_text(errors="replace").splitlines()[-40:])
        print(f"set-up failed: {' '.join(str(c) for c in command)}\n{tail}\n(whole log: {SETUP_LOG})",
              file=sys.stderr, flush=True)
        raise SystemExit(result.returncode)


def prepare_venv(home: Path) -> Path:
    """The cached venv with binder's requirements, then postBuild (which installs the work tree)."""
    venv = CACHE / f"venv-{venv_key()}"
    CACHE.mkdir(parents=True, exist_ok=True)
    SETUP_LOG.write_text("")
    fresh = not (venv / ".requirements-installed").exists()
    print(f"Setting up the demo's environment{' (the first time takes a few minutes)' if fresh else ''}; "
          f"set-up log: {SETUP_LOG}", flush=True)
    python = venv / "bin" / "python"
    ready = venv / ".requirements-installed"  # written last, so a half-built venv is rebuilt
    if not ready.exists():
        shutil.rmtree(venv, ignore_errors=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "venv", str(venv)])
        env = clean_env(venv, home)
        run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], env=env)
        run([str(python), "-m", "pip", "install", "--quiet", "-r", str(BINDER / "requirements.txt")],
            env=env, cwd=REPO)
        ready.touch()
    env = clean_env(venv, home)
    run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "mlpipe-jupyter"], env=env)
    run(["bash", str(BINDER / "postBuild")], env=env, cwd=REPO)
    return venv


def show_outputs(notebook) -> None:
    """Print what each code cell printed, so a headless demo reads like the notebook."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
        print(f"\n>>> {first}{' ...' if cell.source.strip().count(chr(10)) else ''}")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                print(out.get("text", ""), end="")
            elif "text/plain" in out.get("data", {}):
                print(out["data"]["text/plain"])


def execute_notebooks(workdir: Path, names: list[str], artifacts: Path, show: bool = False) -> int:
    """Runs inside the venv: each notebook with nbclient, cwd = ``workdir`` (a copy of binder/)."""
    import mlpipe_jupyter
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    print(f"mlpipe_jupyter {mlpipe_jupyter.__version__} from {Path(mlpipe_jupyter.__file__).parent}", flush=True)
    if Path(sys.prefix) not in Path(mlpipe_jupyter.__file__).resolve().parents:
        print("mlpipe_jupyter is not the one installed in this venv", file=sys.stderr)
        return 2
    artifacts.mkdir(parents=True, exist_ok=True)
    failures = []
    for name in names:
        notebook = nbformat.read(workdir / name, as_version=4)
        client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",  # cwd: the notebook's folder
                                resources={"metadata": {"path": str((workdir / name).parent)}})
        started = time.monotonic()
        try:
            with open(artifacts / "kernel-stderr.log", "a") as kernel_log:  # the kernel's own warnings
                client.execute(stderr=kernel_log)
            print(f"PASS {name} ({time.monotonic() - started:.1f}s)", flush=True)
        except CellExecutionError as error:
            failures.append(name)
            print(f"FAIL {name} ({time.monotonic() - started:.1f}s)\n{failed_cell_report(notebook, error)}",
                  file=sys.stderr, flush=True)
        finally:
            nbformat.write(notebook, artifacts / name.replace("/", "__"))
            if show:
                show_outputs(notebook)
    print(f"\nexecuted notebooks saved in {artifacts}")
    if show and not failures:
        print(NEXT_STEPS.format(jupyter=Path(sys.prefix) / "bin" / "jupyter"))
    return 1 if failures else 0


NEXT_STEPS = """
What to try next:
  {jupyter} lab binder/quickstart.ipynb
                                          the same notebook, with its live monitor, designer and run history
  %pipeline show                          in a notebook: edit the pipeline on a canvas; edits go back to the cells
  %pipeline runs                          the run history: filter, compare runs, open their outputs
  mlpipe runs / mlpipe show latest        the same from a terminal, in the folder of a workspace
  binder/azureml-getting-started/         a Microsoft sample notebook, unchanged, on this machine
"""


def demo_notebooks() -> list[str]:
    """binder/'s notebooks, and those in its subfolders (a sample with its step scripts beside it)."""
    return sorted(p.relative_to(BINDER).as_posix() for p in BINDER.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def demo_name(path: Path) -> str:
    """A notebook given as binder/x.ipynb, x.ipynb or sub/x.ipynb, as its path inside binder/."""
    path = path.resolve() if path.exists() else BINDER / path
    return path.relative_to(BINDER).as_posix() if BINDER in path.parents else path.name


def failed_cell_report(notebook, error) -> str:
    """Which cell raised; nbclient's message already holds its source, output and traceback."""
    for index, cell in enumerate(notebook.cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return f"--- cell {index} ---\n{error}"
    return str(error)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks in binder/ (default: all)")
    parser.add_argument("--artifacts", default=str(REPO / "test-artifacts" / "notebooks"),
                        help="where the executed notebooks are saved")
    parser.add_argument("--show", action="store_true", help="print each cell's text output")
    parser.add_argument("--execute-in", help=argparse.SUPPRESS)  # second phase, inside the venv
    args = parser.parse_args(argv)

    if args.execute_in:
        return execute_notebooks(Path(args.execute_in), args.notebooks, Path(args.artifacts), args.show)

    names = [demo_name(Path(n)) for n in args.notebooks] or demo_notebooks()
    missing = [n for n in names if not (BINDER / n).is_file()]
    if missing or not names:
        print(f"no such notebook in {BINDER}: {', '.join(missing) or '*.ipynb'}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mlpipe-notebooks-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        venv = prepare_venv(home)
        workdir = Path(tmp) / "binder"
        shutil.copytree(BINDER, workdir, ignore=shutil.ignore_patterns(".mlpipe", ".ipynb_checkpoints", "__pycache__"))
        command = [str(venv / "bin" / "python"), str(Path(__file__).resolve()), "--execute-in", str(workdir),
                   "--artifacts", args.artifacts, *(["--show"] if args.show else []), *names]
        print(f"Running {', '.join(names)} headless in {venv}", flush=True)
        return subprocess.run(command, env=clean_env(venv, home), cwd=workdir).returncode


if __name__ == "__main__":
    sys.exit(main())
