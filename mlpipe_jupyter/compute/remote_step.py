"""Runs one step on a machine that does not share the runner's filesystem (compute/staging.py is the
runner's side). It is shipped with the step and started by path, so it needs only the standard library
and fsspec, which reaches the staging folder.

It downloads the step's working copy, its inputs and this package from the staging folder into a
folder of its own, runs the step's command there (its output goes to the job's log as usual), uploads
the step's metrics file whenever it grows so the run history sees them while the step runs, and at the
end uploads the outputs, the run folder, ``./outputs`` and ``./logs`` with a manifest (``done.json``)
listing every folder and file, which is what the runner reads back.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading

ROOT_TOKEN = "@MLPIPE_ROOT@"  # the step's folder here, unknown to the runner
PYTHON_TOKEN = "@MLPIPE_PYTHON@"  # this interpreter
LIB_TOKEN = "@MLPIPE_LIB@"  # the folder holding this package's source
NODE_TOKEN = "@MLPIPE_NODE_RANK@"  # which node's share of a distributed step this job is
METRICS_SECONDS = 0.5
PACKAGE_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mlpipe-jupyter", "package")


def download(fs, remote: str, local: str) -> None:
    """A file, or a folder with its empty subfolders (object stores keep those as ``.keep`` files)."""
    if not fs.isdir(remote):
        os.makedirs(os.path.dirname(local), exist_ok=True)
        fs.get_file(remote, local)
        return
    os.makedirs(local, exist_ok=True)
    for path in fs.find(remote, withdirs=True):
        relative = path[len(remote.rstrip("/")):].lstrip("/")
        if not relative:
            continue
        target = os.path.join(local, relative)
        if fs.isdir(path):
            os.makedirs(target, exist_ok=True)
        elif os.path.basename(relative) != ".keep":
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fs.get_file(path, target)


def upload(fs, local: str, remote: str) -> dict:
    """A folder's tree (links are not followed, and left behind; an empty folder gets a ``.keep`` file):
    {"dirs": [...], "files": [...], "left": [...]}."""
    listing = {"dirs": [], "files": [], "left": []}
    if not os.path.isdir(local):
        return listing
    for folder, dirs, files in os.walk(local):
        relative_folder = os.path.relpath(folder, local)
        if relative_folder != ".":
            listing["dirs"].append(relative_folder)
        for name in dirs[:]:
            if os.path.islink(os.path.join(folder, name)):
                dirs.remove(name)
                listing["left"].append(os.path.normpath(os.path.join(relative_folder, name)))
        if not dirs and not files:  # object stores have no empty folders: a marker keeps it
            keep = f"{remote}/{relative_folder}".replace("/.", "") if relative_folder == "." else f"{remote}/{relative_folder}"
            fs.makedirs(keep, exist_ok=True)
            fs.pipe_file(f"{keep}/.keep", b"")
        for name in files:
            path = os.path.join(folder, name)
            relative = os.path.normpath(os.path.join(relative_folder, name))
            if os.path.islink(path) or not os.path.isfile(path):
                listing["left"].append(relative)
                continue
            fs.makedirs(f"{remote}/{os.path.dirname(relative)}".rstrip("/"), exist_ok=True)
            fs.put_file(path, f"{remote}/{relative}")
            listing["files"].append(relative)
    return listing


def package(fs, remote: str, digest: str) -> str:
    """This package's source, cached on the node by its digest (a folder for PYTHONPATH)."""
    cached = os.path.join(PACKAGE_CACHE, digest)
    if not os.path.isdir(cached):
        partial = f"{cached}.{os.getpid()}.partial"
        download(fs, remote, partial)
        try:
            os.replace(partial, cached)
        except OSError:  # another step on this node cached it meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return cached


class MetricsUploader(threading.Thread):
    """Uploads the step's metrics file each time it grew, so they reach the run history live."""

    def __init__(self, fs, local: str, remote: str):
        super().__init__(daemon=True)
        self.fs, self.local, self.remote = fs, local, remote
        self.size = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(METRICS_SECONDS):
            self.push()

    def push(self):
        try:
            size = os.path.getsize(self.local)
        except OSError:
            return
        if size != self.size:
            try:
                self.fs.makedirs(self.remote.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(self.local, self.remote)
                self.size = size
            except OSError as e:  # tried again next time; the step goes on
                print(f"mlpipe: metrics not uploaded yet: {e}", file=sys.stderr, flush=True)


def main(base_url: str, root: str, node_rank: str) -> None:
    import fsspec

    fs, base = fsspec.core.url_to_fs(base_url)
    manifest = json.loads(fs.cat_file(f"{base}/manifest.json"))
    download(fs, f"{base}/wd", os.path.join(root, "wd"))
    for name in manifest["inputs"]:
        download(fs, f"{base}/in/{name}", os.path.join(root, "in", name))
    lib = package(fs, manifest["package"], manifest["package_digest"])
    for name in manifest["outputs"]:
        os.makedirs(os.path.join(root, "out", name), exist_ok=True)
    for folder in ("run", "wd/outputs", "wd/logs"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)

    def place(text: str) -> str:
        return (text.replace(ROOT_TOKEN, root).replace(PYTHON_TOKEN, sys.executable).replace(LIB_TOKEN, lib)
                .replace(NODE_TOKEN, node_rank))

    env = {**os.environ, **{k: place(v) for k, v in manifest["env"].items()}}
    proc = subprocess.Popen([place(w) for w in manifest["command"]], cwd=os.path.join(root, "wd"), env=env,
                            stdin=subprocess.DEVNULL)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: proc.send_signal(signum))
    result = f"{base}/result/node{node_rank}"
    metrics = MetricsUploader(fs, os.path.join(root, "run", manifest["metrics_file"]), f"{result}/metrics")
    if node_rank == "0":
        metrics.start()
    code = proc.wait()
    metrics.done.set()
    done = {"exit_code": code, "areas": {}}
    for area, local in (("out", "out"), ("run", "run"), ("wd_outputs", "wd/outputs"), ("wd_logs", "wd/logs")):
        done["areas"][area] = upload(fs, os.path.join(root, local), f"{result}/{area}")
    with fs.open(f"{result}/done.json", "w") as f:
        json.dump(done, f)
    shutil.rmtree(root, ignore_errors=True)
    if code < 0:  # end as the step did
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main(*sys.argv[1:4])
