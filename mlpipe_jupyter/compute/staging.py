"""A step on machines that do not share this one's filesystem: what it reads and writes travels through a
staging folder on storage both reach (any fsspec URL: ``s3://bucket/staging``, ``gcs://...``,
``abfs://...``, or a shared folder as ``file:///...``).

Before the step starts, the runner uploads the step's working copy, its inputs, this package's source
(once per version) and a manifest (command, variables) to ``<staging>/<step run>/``; the step's paths
are written with placeholders its node fills in. compute/remote_step.py runs the step there, and
uploads its metrics while it runs and its outputs and files when it ends, with ``done.json`` listing
them. The runner copies the metrics into the step's run folder as they grow (the run history follows
that file as for any step), and in the protocol's collect stage brings the rest into the job's folders,
where the runner commits outputs exactly as for a local step, so their fingerprints are the same
wherever the step ran. The staging folder of a step is removed once collected.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import threading
from pathlib import Path

from mlpipe_jupyter.compute import remote_step
from mlpipe_jupyter.compute.local import run_context_environ
from mlpipe_jupyter.compute.remote_step import LIB_TOKEN, NODE_TOKEN, PYTHON_TOKEN, ROOT_TOKEN
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.running import contract
from mlpipe_jupyter.running.protocol import Job

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PACKAGE_SUFFIXES = (".py", ".json", ".yaml")
# Run by the node's interpreter as the job's entrypoint: fetch the wrapper into a fresh folder, run it.
BOOTSTRAP = ("import fsspec, os, sys, tempfile; fs, base = fsspec.core.url_to_fs(sys.argv[1]); "
             "root = tempfile.mkdtemp(prefix='mlpipe-step-'); wrapper = os.path.join(root, 'remote_step.py'); "
             "fs.get_file(base + '/remote_step.py', wrapper); "
             "os.execv(sys.executable, [sys.executable, wrapper, sys.argv[1], root, sys.argv[2]])")


def open_staging(url: str, where: str):
    """(filesystem, root path) of a staging URL, or a clear error."""
    try:
        import fsspec  # loaded only for a staged step: every process imports this module through the registry

        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError, TypeError) as e:
        raise UserError(f"{where}: staging_url {url!r} cannot be opened with fsspec ({e}); give a URL every node "
                        "and this machine reach, like 's3://bucket/staging' or 'file:///shared/staging'.") from None
    return fs, root.rstrip("/")


@functools.cache
def package_files() -> tuple[tuple[str, str], ...]:
    """(relative path, digest) of this package's source files that a step needs (no built JavaScript)."""
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*")):
        relative = path.relative_to(PACKAGE_DIR.parent).as_posix()
        if path.suffix in PACKAGE_SUFFIXES and path.is_file() and "__pycache__" not in relative \
                and "/labextension/" not in relative:
            found.append((relative, hashlib.sha256(path.read_bytes()).hexdigest()))
    return tuple(found)


def package_digest() -> str:
    return hashlib.sha256(json.dumps(package_files()).encode()).hexdigest()[:32]


def node_path(kind: str, name: str, host) -> str:
    """Where an input or output of the job is on the node (``host`` is its place here)."""
    return f"{ROOT_TOKEN}/in/{name}" if kind == "input" else f"{ROOT_TOKEN}/out/{name}/{Path(host).name}"


class StagedStep:
    """One step's staging folder: uploaded once (however many node jobs share it), followed, collected."""

    def __init__(self, url: str, job: Job):
        self.fs, root = open_staging(url, f"Step '{job.step_name}'")
        self.url = url.rstrip("/")
        self.base = f"{root}/{job.run_id}"
        self.base_url = f"{self.url}/{job.run_id}"
        self.job = job
        self.metrics_read = 0
        self._uploaded = False
        self._lock = threading.Lock()

    def entrypoint(self, python: str, node_rank: int) -> str:
        """The job's entrypoint (``python`` already quoted for a shell)."""
        return f"{python} -c {shlex.quote(BOOTSTRAP)} {shlex.quote(self.base_url)} {node_rank}"

    def upload(self, command: list[str], env: dict[str, str]) -> None:
        """Once for the step, whichever of its node jobs comes first."""
        with self._lock:
            if not self._uploaded:
                self._upload(command, env)
                self._uploaded = True

    def _upload(self, command: list[str], env: dict[str, str]) -> None:
        job, fs = self.job, self.fs
        remote_step.upload(fs, str(job.working_dir), f"{self.base}/wd")
        for name, host in job.inputs.items():
            if Path(host).is_dir():
                remote_step.upload(fs, str(host), f"{self.base}/in/{name}")
            else:
                fs.makedirs(f"{self.base}/in", exist_ok=True)
                fs.put_file(str(host), f"{self.base}/in/{name}")
        digest = package_digest()
        package = f"{self.base.rsplit('/', 1)[0]}/_package/{digest}"
        if not fs.exists(f"{package}/.complete"):
            for relative, _ in package_files():
                fs.makedirs(f"{package}/{relative.rsplit('/', 1)[0]}", exist_ok=True)
                fs.put_file(str(PACKAGE_DIR.parent / relative), f"{package}/{relative}")
            fs.pipe_file(f"{package}/.complete", b"")
        fs.put_file(remote_step.__file__, f"{self.base}/remote_step.py")
        manifest = {"command": command, "env": env, "inputs": sorted(job.inputs), "outputs": sorted(job.outputs),
                    "package": package, "package_digest": digest, "metrics_file": contract.METRICS_FILE}
        fs.pipe_file(f"{self.base}/manifest.json", json.dumps(manifest).encode())

    def pull_metrics(self) -> None:
        """The new part of the metrics node 0 uploaded, appended to the run folder's file the runner follows."""
        remote = f"{self.base}/result/node0/metrics"
        try:
            size = self.fs.size(remote)
        except (FileNotFoundError, OSError):
            return
        if size and size > self.metrics_read:
            self._append_metrics(self.fs.cat_file(remote, start=self.metrics_read, end=size))

    def _append_metrics(self, data: bytes) -> None:
        with open(self.job.run_dir / contract.METRICS_FILE, "ab") as f:
            f.write(data)
        self.metrics_read += len(data)

    def collect(self, nodes: int) -> list[str]:
        """What the nodes uploaded into the job's folders (the other nodes' rank logs only); returns what
        was left behind (links), then removes the step's staging folder."""
        job, left = self.job, []
        places = {"out": None, "run": job.run_dir, "wd_outputs": job.working_dir / "outputs",
                  "wd_logs": job.working_dir / "logs"}
        for node in range(nodes):
            result = f"{self.base}/result/node{node}"
            try:
                done = json.loads(self.fs.cat_file(f"{result}/done.json"))
            except (FileNotFoundError, OSError, ValueError):
                continue  # the step did not get to its end there (stopped): its log says why
            for area, listing in done["areas"].items():
                if node and area != "run":
                    continue
                for relative in listing["dirs"]:
                    self._local(area, relative, places).mkdir(parents=True, exist_ok=True)
                for relative in listing["files"]:
                    if node and not relative.startswith("user_logs/"):
                        continue
                    local = self._local(area, relative, places)
                    if area == "run" and relative == contract.METRICS_FILE:
                        self._append_metrics(self.fs.cat_file(f"{result}/{area}/{relative}", start=self.metrics_read))
                        continue
                    local.parent.mkdir(parents=True, exist_ok=True)
                    self.fs.get_file(f"{result}/{area}/{relative}", str(local))
                left += [f"{area}/{x}" for x in listing["left"]]
        self.remove()
        return left

    def _local(self, area: str, relative: str, places: dict) -> Path:
        if area == "out":  # out/<output name>/...: into that output's staged folder
            name, _, rest = relative.partition("/")
            return Path(self.job.outputs[name]).parent / rest if rest else Path(self.job.outputs[name]).parent
        return Path(places[area]) / relative

    def remove(self) -> None:
        try:
            self.fs.rm(self.base, recursive=True)
        except (FileNotFoundError, OSError):
            pass


def node_environ(job: Job) -> dict[str, str]:
    """The step's variables with its paths on the node (the run context's, PYTHONPATH with the package)."""
    env = {**job.environment.environment_variables, **job.environ(node_path)}
    env.update(run_context_environ(job, f"{ROOT_TOKEN}/run"))
    datasets = {k: {**v, "path": node_path("input", k, job.inputs[k]) if k in job.inputs else v.get("path")}
                for k, v in job.input_datasets.items()}
    env[contract.INPUT_DATASETS_VAR] = json.dumps(datasets)
    env["PYTHONPATH"] = os.pathsep.join([f"{ROOT_TOKEN}/wd", LIB_TOKEN,
                                         f"{LIB_TOKEN}/mlpipe_jupyter/{contract.AZUREML_IMPORT_ROOT}"])
    return env


__all__ = ["StagedStep", "node_environ", "node_path", "open_staging", "PYTHON_TOKEN", "ROOT_TOKEN", "LIB_TOKEN",
           "NODE_TOKEN"]
