"""Ray compute: each step is one Ray job, submitted through the Ray Jobs REST API (plain HTTP: this
package does not need ``ray`` installed to submit).

Where a step runs. Ray starts a job's entrypoint on a node with the resources the job asks for
(``entrypoint_num_cpus``, ``_num_gpus``, ``_memory``, ``_resources``); the runner checks first that
some alive node has them all, because Ray keeps an infeasible job pending for ever and cannot stop
it (ray#58353).

What it sees. The cluster shares this machine's filesystem (NFS, a shared volume, or one machine as
in the tests): the entrypoint changes into the step's own copy of its snapshot and gets its inputs,
outputs and run folder as the same absolute paths, so outputs land where the runner commits them and
metrics written by ``Run.get_context()`` reach the run history while the job runs, from any node.
A cluster that shares no filesystem with this machine (KubeRay, cloud VMs) gets a ``staging_url``
instead: everything the step reads and writes travels through that fsspec URL (compute/staging.py),
its metrics while it runs, and the step runs in a folder of its own on the node. The Jobs API's own
``working_dir`` upload was not used for this: it unpacks into a node-local folder and brings nothing
back, so outputs, ``./outputs``, ``./logs`` and metrics would still need the staging way home.

Distributed steps (compute/launch_ranks.py) run as one job whose launcher starts every process, or,
over several nodes, as one job per node, whose launchers meet through a rendezvous file.

How it runs. The interpreter is explicit (a node's ``python`` on PATH may be another): the
environment's ``interpreter_path``, the virtualenv Ray builds for an environment with pip packages
(``runtime_env`` ``pip``), else the target's ``python`` (by default the interpreter running this
process, which a shared filesystem reaches). The step runs contained as local steps are
(compute/process.py: its own PID namespace), so stopping the job stops everything it started,
daemons included.

What comes back. The handle polls the job's status and its whole log, read on the node that ran it
(``tail_job_logs`` waits a second between reads and returned nothing for jobs shorter than two
seconds), emits the new complete lines, and reads the log once more after the job ended, so no line
is lost. Ray's own lines in that file are left out.
"""
from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from typing import Iterator

from mlpipe_jupyter.compute.launch_ranks import launch_command
from mlpipe_jupyter.compute.local import step_environ
from mlpipe_jupyter.compute import secret_env
from mlpipe_jupyter.compute.process import containment_prefix
from mlpipe_jupyter.compute.staging import (LIB_TOKEN, NODE_TOKEN, PYTHON_TOKEN, ROOT_TOKEN, StagedStep, node_environ,
                                            node_path, open_staging)
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.environment import EnvironmentDefinition
from mlpipe_jupyter.running.protocol import ComputeBackend, Job, register
from mlpipe_jupyter.secrets import MASK, looks_secret, recall
from mlpipe_jupyter.status import FINAL_STATUSES

POLL_SECONDS = 0.25
PATIENCE_SECONDS = 120  # how long a busy dashboard may go unanswered before the step fails
TOKEN_VARIABLE = "RAY_AUTH_TOKEN"  # where a token given in another process is found (Ray's own name)
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
RESOURCE_KEYS = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
RAY_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\tINFO job_manager\.py:\d+ -- [^\n]*\n")  # Ray's, not the step's
STAGED_LAUNCHER = "mlpipe_jupyter/compute/launch_ranks.py"  # in the package's folder on the node
INTERPRETER = object()  # where a command names the step's interpreter, which is written unquoted
RECOVER_TIMEOUT_SECONDS = 5  # recovery runs when a workspace opens: a cluster that is gone is given up soon
VENV_PYTHON = '"$VIRTUAL_ENV/bin/python"'  # the virtualenv Ray made for a runtime_env's pip packages


def token_owner(address: str) -> tuple:
    """Under what a token given in this process is remembered (never stored: the config keeps ``***``)."""
    return ("ray-dashboard", address.rstrip("/"))


class RayClient:
    """The few Ray Jobs REST calls a step needs, over plain HTTP."""

    def __init__(self, address: str, header: str | None = None, token: str | None = None, timeout: float = 30):
        self.address = address.rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers[header or "Authorization"] = f"Bearer {token}" if (header or "Authorization") == "Authorization" \
                else token
        self.timeout = timeout

    def request(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.address + path, data=data, method=method, headers=self.headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def nodes(self) -> list[dict]:
        """The alive nodes: {"node_ip", "resources_total"} each."""
        found = self.request("GET", "/api/v0/nodes?limit=10000")["data"]["result"]["result"]
        return [n for n in found if n.get("state") == "ALIVE"]

    def submit(self, body: dict) -> str:
        return self.request("POST", "/api/jobs/", body)["submission_id"]

    def jobs(self) -> list[dict]:
        """Every job the cluster knows, ended ones included."""
        return self.request("GET", "/api/jobs/")

    def job(self, submission_id: str) -> dict:
        return self.request("GET", f"/api/jobs/{submission_id}")

    def logs(self, submission_id: str, node_id: str) -> str:
        """The job's whole log, read on the node that ran it. The state API's log route, because the Jobs
        API's reads the folder of the head's session on every node: another job's file, or none, where
        nodes have temp folders of their own."""
        query = urllib.parse.urlencode({"node_id": node_id, "filename": f"job-driver-{submission_id}.log",
                                        "lines": -1})
        req = urllib.request.Request(f"{self.address}/api/v0/logs/file?{query}", headers=self.headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as response:
            return response.read().decode("utf-8", "replace")

    def stop(self, submission_id: str) -> None:
        self.request("POST", f"/api/jobs/{submission_id}/stop")


def describe(error: Exception) -> str:
    """An HTTP or connection error in words (the request's headers, which may hold a token, are not shown)."""
    if isinstance(error, urllib.error.HTTPError):
        detail = error.read().decode("utf-8", "replace").strip().splitlines()
        return f"HTTP {error.code}" + (f": {detail[-1]}" if detail else "")
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return f"{type(error).__name__}: {error}"


def stop_when_started(client: RayClient, submission_id: str, give_up_seconds: float = 3600) -> None:
    """Stop a job that waited for resources as soon as it starts, if it ever does (a waiting job cannot be
    stopped); gives up when the cluster no longer answers."""
    deadline = time.monotonic() + give_up_seconds
    while time.monotonic() < deadline:
        try:
            if client.job(submission_id).get("status") != "PENDING":
                client.stop(submission_id)
                return
        except Exception:  # noqa: BLE001 - the cluster may be gone, then so is the job
            return
        time.sleep(1)


def stop_jobs(client: RayClient, orphaned) -> None:
    """Stop the running or waiting jobs whose metadata ``orphaned(metadata)`` says no runner follows."""
    for job in client.jobs():
        if job.get("status") in ("RUNNING", "PENDING") and orphaned(job.get("metadata") or {}):
            client.stop(job["submission_id"])
            if job["status"] == "PENDING":  # stop_job leaves a waiting job waiting (ray#58353)
                threading.Thread(target=stop_when_started, args=(client, job["submission_id"]), daemon=True).start()


@register("ray")
class RayBackend(ComputeBackend):
    """The ``ray`` kind of compute target (config from ``RayCompute.provisioning_configuration``)."""

    @classmethod
    def recover(cls, runs: list[dict], targets: dict) -> None:
        """A runner that died left its steps' jobs running on the cluster, where nothing would stop them:
        stop every running or waiting job of those runs (by the metadata ``submission()`` gives a job).
        A cluster that does not answer is warned about and skipped: recovery must not stop a workspace
        from opening."""
        ids = {r["id"] for r in runs}
        names = {r["details"].get("compute_target") for r in runs}
        clients = {}
        for name in sorted(n for n in names if n and (targets.get(n) or {}).get("kind") == cls.kind):
            try:
                client = cls(None, name, targets[name].get("config")).client()
            except UserError as e:
                warnings.warn(f"Jobs of runs whose runner died may still run on Ray target '{name}': {e}",
                              stacklevel=2)
                continue
            client.timeout = RECOVER_TIMEOUT_SECONDS
            clients.setdefault(client.address, (name, client))
        for name, client in clients.values():
            try:
                stop_jobs(client, lambda m: m.get("mlpipe.run_id") in ids or m.get("mlpipe.parent_run_id") in ids)
            except Exception as e:  # noqa: BLE001 - an unreachable cluster is reported, not raised
                warnings.warn(f"Jobs of runs whose runner died may still run on Ray target '{name}': its dashboard "
                              f"at {client.address} did not answer ({describe(e)}).", stacklevel=2)

    def identity(self) -> dict:
        """The kind, an image or environment, and the interpreter steps run in when they name none."""
        identity = super().identity()
        if self.config.get("python"):
            identity["python"] = self.config["python"]
        return identity

    # -- the cluster ----------------------------------------------------------------------------------------
    def client(self) -> RayClient:
        address = self.config.get("address")
        if not address:
            raise UserError(f"Ray compute target '{self.target_name}' has no dashboard address; create it with "
                            "RayCompute.provisioning_configuration(address='http://HOST:8265').")
        token = self.config.get("auth_token")
        if token == MASK:
            token = recall(token_owner(address), {"auth_token": MASK})["auth_token"]
            if token == MASK:
                token = os.environ.get(TOKEN_VARIABLE)
            if not token:
                raise UserError(f"Ray compute target '{self.target_name}' needs its auth token, which is never "
                                f"saved: set {TOKEN_VARIABLE} in the environment of the process that runs the "
                                "pipeline, or create the target again in this session.")
        return RayClient(address, self.config.get("auth_header"), token or os.environ.get(TOKEN_VARIABLE))

    def resources(self, step_name: str) -> dict:
        """What a step asks for: the target's ``num_cpus``, ``num_gpus``, ``memory`` and custom
        ``resources``, with that step's overrides from ``step_resources``."""
        override = (self.config.get("step_resources") or {}).get(step_name) or {}
        asked = {k: self.config.get(k) for k in RESOURCE_KEYS}
        asked.update({k: override[k] for k in RESOURCE_KEYS if override.get(k) is not None})
        asked = {k: v for k, v in asked.items() if v is not None}
        custom = {**(self.config.get("resources") or {}), **(override.get("resources") or {})}
        if custom:
            asked["resources"] = custom
        return asked

    def check(self, step_name: str, environment: EnvironmentDefinition) -> None:
        """Before the run: an environment Ray can give, a cluster that answers, a node with what the step asks."""
        self._check_environment(step_name, environment)
        if self.config.get("staging_url"):
            fs, root = open_staging(self.config["staging_url"], f"Ray target '{self.target_name}'")
            try:
                fs.makedirs(root, exist_ok=True)
            except OSError as e:
                raise UserError(f"Step '{step_name}' runs on Ray target '{self.target_name}', whose staging folder "
                                f"{self.config['staging_url']} cannot be written from here ({e}).") from None
        client = self.client()
        self._check_resources(step_name, client)
        if not getattr(self, "_swept", False):
            self._swept = True
            self.sweep(client)

    def sweep(self, client: RayClient) -> None:
        """Stop jobs of this workspace's steps that have ended: a runner that died left them, and another
        process marked its run failed without reaching the cluster (a wait notices a dead runner too).
        Never raises: it runs before a run starts, which it must not stop."""
        store = getattr(self.workspace, "_store", None)
        if store is None:
            return

        def orphaned(meta: dict) -> bool:
            row = store.get_run(meta["mlpipe.run_id"]) if meta.get("mlpipe.run_id") else None
            return row is not None and row["status"] in FINAL_STATUSES

        try:
            stop_jobs(client, orphaned)
        except Exception:  # noqa: BLE001 - the cluster answered the check just now; a sweep can wait for the next run
            pass

    def _check_environment(self, step_name: str, env: EnvironmentDefinition) -> None:
        where = f"Step '{step_name}' on Ray target '{self.target_name}'"
        if env.docker.enabled or env.docker.base_dockerfile:
            raise UserError(f"{where} uses environment '{env.name}' with a Docker image, which this target does not "
                            "run (Ray runs images only through podman on its nodes); give the step an environment "
                            "with pip packages, or run it on a Docker target.")
        deps = env.python.conda_dependencies
        if env.needs_build and (deps.conda_packages or (deps.python_version and not deps.pip_packages)):
            raise UserError(f"{where}: environment '{env.name}' needs conda packages or another Python version; "
                            "a Ray target installs pip packages only (through runtime_env).")
        path = env.python.interpreter_path
        if path and not os.access(path, os.X_OK) and not self.config.get("staging_url"):
            raise UserError(f"{where}: environment '{env.name}' names the interpreter '{path}', which does not exist "
                            "(the cluster's nodes share this machine's filesystem, so it must exist here too).")

    def _check_resources(self, step_name: str, client: RayClient) -> None:
        asked = self.resources(step_name)
        wanted = {RESOURCE_KEYS[k]: float(v) for k, v in asked.items() if k in RESOURCE_KEYS}
        wanted.update({k: float(v) for k, v in (asked.get("resources") or {}).items()})
        try:
            nodes = client.nodes()
        except Exception as e:  # noqa: BLE001 - any failure to answer is the same problem to the user
            raise UserError(f"Step '{step_name}' runs on Ray target '{self.target_name}', but the Ray dashboard at "
                            f"{client.address} did not answer ({describe(e)}). Start the cluster or correct the "
                            "address.") from None
        if any(all(n["resources_total"].get(k, 0) >= v for k, v in wanted.items()) for n in nodes):
            return
        short = [k for k, v in wanted.items() if not any(n["resources_total"].get(k, 0) >= v for n in nodes)]
        missing = ", ".join(f"{k}={wanted[k]:g}" for k in short) or \
            ", ".join(f"{k}={v:g}" for k, v in wanted.items()) + " together"
        have = "; ".join(f"{n['node_ip']}: " + ", ".join(f"{k}={v:g}" for k, v in sorted(n["resources_total"].items())
                                                          if not k.startswith(("node:", "object_store")))
                         for n in nodes) or "no alive node"
        raise UserError(f"Step '{step_name}' asks Ray target '{self.target_name}' for {missing}, which no node of "
                        f"the cluster has ({have}); Ray would keep it waiting for ever. Ask for less, or add a node "
                        "that has it.")

    # -- a step ---------------------------------------------------------------------------------------------
    def submission(self, job: Job, node_rank: int | None = None, staged: StagedStep | None = None) -> tuple[dict, str]:
        """The Jobs API request of a step (of one node's share of a step spread over ``node_count`` jobs),
        and its entrypoint command (Ray writes it into the log: left out). A staged step's command and
        variables are in its staging folder (``staged_manifest``), not in the request."""
        env = job.environment
        runtime_env = json.loads(json.dumps(self.config.get("runtime_env") or {}))
        pip = list(runtime_env.get("pip") or [])
        if env.needs_build:
            pip += [p for p in env.python.conda_dependencies.pip_packages if p not in pip]
        python = shlex.quote(env.python.interpreter_path or self.config.get("python") or sys.executable)
        if pip:
            runtime_env["pip"] = pip
            if not env.python.interpreter_path:
                python = VENV_PYTHON
        if staged is not None:
            entrypoint = "exec " + " ".join([*map(shlex.quote, containment_prefix()),
                                             staged.entrypoint(python, node_rank or 0)])
            return self._request(job, node_rank, entrypoint, runtime_env), entrypoint
        variables = step_environ(job, base={})
        runtime_env["env_vars"] = {**(runtime_env.get("env_vars") or {}), **variables}
        words = [INTERPRETER, job.script, *job.argv()]
        if job.distributed:  # the launcher (standard library only) runs in the step's interpreter too
            words = launch_command(job.distributed, INTERPRETER, str(job.run_dir), words, node_rank=node_rank,
                                   rendezvous=str(job.scratch / "rendezvous.json") if node_rank is not None else None,
                                   reach=self._host())
        command = " ".join([*map(shlex.quote, containment_prefix()),
                            *(python if w is INTERPRETER else shlex.quote(w) for w in words)])
        entrypoint = f"cd {shlex.quote(str(job.working_dir))} && exec {command}"
        entrypoint = self._secrets_apart(job, runtime_env, entrypoint)
        return self._request(job, node_rank, entrypoint, runtime_env), entrypoint

    def _secrets_apart(self, job: Job, runtime_env: dict, entrypoint: str) -> str:
        """Ray shows a job's variables in its dashboard and job list: secret-looking ones leave the
        request for a file only this user reads, in the step's private folder, which the entrypoint
        (compute/secret_env.py, in the target's interpreter) reads into the step's environment."""
        variables = runtime_env.get("env_vars") or {}
        secrets = {k: v for k, v in variables.items() if looks_secret(k)}
        if not secrets:
            return entrypoint
        runtime_env["env_vars"] = {k: v for k, v in variables.items() if k not in secrets}
        path = (job.scratch or job.run_dir.parent) / f"secret-env-{uuid.uuid4().hex}.json"
        secret_env.write(str(path), secrets)
        python = self.config.get("python") or sys.executable
        return "exec " + " ".join(map(shlex.quote, [python, "-I", secret_env.__file__, str(path), entrypoint]))

    def _host(self) -> str:
        return urllib.parse.urlsplit(self.config.get("address") or "").hostname or ""

    def staged_manifest(self, job: Job, staged: StagedStep) -> tuple[list[str], dict]:
        """A staged step's command and variables, its paths as placeholders the node fills in."""
        words = [PYTHON_TOKEN, job.script, *job.argv(node_path)]
        if job.distributed:
            several = job.distributed.get("node_count", 1) > 1
            words = launch_command(job.distributed, PYTHON_TOKEN, f"{ROOT_TOKEN}/run", words,
                                   launcher=f"{LIB_TOKEN}/{STAGED_LAUNCHER}", node_rank=NODE_TOKEN if several else None,
                                   rendezvous=f"{staged.base_url}/rendezvous.json", reach=self._host())
        return words, node_environ(job)

    def _request(self, job: Job, node_rank: int | None, entrypoint: str, runtime_env: dict) -> dict:
        body = {"entrypoint": entrypoint, "runtime_env": runtime_env,
                "submission_id": f"mlpipe-{job.run_id}-{'' if node_rank is None else f'node{node_rank}-'}"
                                 f"{uuid.uuid4().hex[:6]}",
                "metadata": {"mlpipe.run_id": job.run_id, "mlpipe.step": job.step_name,
                             "mlpipe.parent_run_id": job.parent_run_id or ""}}
        asked = self.resources(job.step_name)
        for key in RESOURCE_KEYS:
            if asked.get(key) is not None:
                body[f"entrypoint_{key}"] = int(asked[key]) if key == "memory" else float(asked[key])
        if asked.get("resources"):
            body["entrypoint_resources"] = {k: float(v) for k, v in asked["resources"].items()}
        return body

    def start(self, job: Job):
        """One job; a distributed step over more than one node, one job per node (Ray places each where
        its resources are: two may share a node)."""
        nodes = (job.distributed or {}).get("node_count", 1)
        staged = StagedStep(self.config["staging_url"], job) if self.config.get("staging_url") else None
        if nodes == 1:
            return RayHandle(self, job, staged=staged)
        return SpreadHandle([RayHandle(self, job, node_rank, staged) for node_rank in range(nodes)])

    def collect(self, job: Job, handle) -> None:
        """A staged step's outputs, files and last metrics, from its staging folder into the job's folders."""
        handles = getattr(handle, "handles", [handle])
        staged = getattr(handles[0], "staged", None)
        if staged is not None:
            staged.collect(len(handles))


class RayHandle:
    """One step as one Ray job: submit, follow status and log, stop."""

    def __init__(self, backend: RayBackend, job: Job, node_rank: int | None = None, staged: StagedStep | None = None):
        self.backend, self.job, self.node_rank, self.staged = backend, job, node_rank, staged
        self.error: str | None = None
        self.exit_code: int | None = None
        self.submission_id: str | None = None
        self._canceled = threading.Event()
        self._lock = threading.Lock()
        self._output: queue.Queue = queue.Queue()  # bytes, then None at the end
        self._done = threading.Event()
        threading.Thread(target=self._run, name=f"ray-{job.step_name}", daemon=True).start()

    def _run(self):
        job = self.job
        try:
            client = self.backend.client()
            self.backend._check_resources(job.step_name, client)  # check() covers one step per environment
            body, entrypoint = self.backend.submission(job, self.node_rank, self.staged)
            if self.staged is not None:
                self.staged.upload(*self.backend.staged_manifest(job, self.staged))
            with self._lock:
                if self._canceled.is_set():
                    self.exit_code = -signal.SIGTERM
                    return
                self.submission_id = self._submit(client, body)
            self._follow(client, f"Running entrypoint for job {self.submission_id}: {entrypoint}\n")
        except UserError as e:
            self._fail(str(e))
        except Exception as e:  # noqa: BLE001 - shown as the step's error rather than lost in a thread
            self._fail(f"Step '{job.step_name}' could not run on Ray target '{self.backend.target_name}': "
                       f"{describe(e)}")
        finally:
            self._output.put(None)
            self._done.set()

    @staticmethod
    def _ask(call, *args):
        """A call to the dashboard, tried again while it does not answer (a loaded head node)."""
        first_failure = None
        while True:
            try:
                return call(*args)
            except (urllib.error.URLError, OSError) as e:
                if isinstance(e, urllib.error.HTTPError) and e.code < 500:
                    raise
                first_failure = first_failure or time.monotonic()
                if time.monotonic() - first_failure > PATIENCE_SECONDS:
                    raise
                time.sleep(1)

    def _submit(self, client: RayClient, body: dict) -> str:
        """Submit once: a request that timed out may have been taken, so its submission id is looked up first."""
        deadline = time.monotonic() + PATIENCE_SECONDS
        while True:
            try:
                return client.submit(body)
            except (urllib.error.URLError, OSError) as e:
                if isinstance(e, urllib.error.HTTPError) and e.code < 500 or time.monotonic() > deadline:
                    raise
                try:
                    self._ask(client.job, body["submission_id"])
                    return body["submission_id"]
                except urllib.error.HTTPError as missing:
                    if missing.code != 404:
                        raise

    def _follow(self, client: RayClient, marker: str):
        """Emit the log's new complete lines each poll and the rest once the job ended; the exit code at
        the end. Ray writes its own lines into the same file (the entrypoint's command, not always
        first): they are left out."""
        read = 0
        while True:
            details = self._ask(client.job, self.submission_id)
            status = details.get("status")
            if status == "PENDING" and self._canceled.is_set():
                self.exit_code = -signal.SIGTERM  # stop_job leaves a waiting job waiting: it ends here
                threading.Thread(target=stop_when_started, args=(client, self.submission_id), daemon=True).start()
                return
            if status != "PENDING" and details.get("driver_node_id"):
                text = self._ask(client.logs, self.submission_id, details["driver_node_id"])
                end = len(text) if status in TERMINAL else text.rfind("\n", read) + 1
                if end > read:
                    new = RAY_LINE.sub("", text[read:end].replace(marker, ""))
                    if new:
                        self._output.put(new.encode("utf-8", "replace"))
                    read = end
            if self.staged is not None and status == "RUNNING" and not self.node_rank:
                self.staged.pull_metrics()
            if status in TERMINAL:
                self.exit_code = self._exit_code(details)
                if self.exit_code != 0 and details.get("driver_exit_code") is None and not self._canceled.is_set():
                    self._fail(f"Step '{self.job.step_name}' could not start on Ray target "
                               f"'{self.backend.target_name}': {(details.get('message') or status).strip()}")
                return
            time.sleep(POLL_SECONDS)

    def _exit_code(self, details: dict) -> int:
        code = details.get("driver_exit_code")
        if details["status"] == "STOPPED" or (self._canceled.is_set() and code is None):
            return -signal.SIGTERM
        if code is None:
            return 0 if details["status"] == "SUCCEEDED" else 1
        if containment_prefix() and 128 < code <= 128 + signal.NSIG:  # the namespace's shell says 128 + N
            return 128 - code
        return code

    def _fail(self, message: str):
        self.error = message
        self.exit_code = 1
        self._output.put(f"ERROR: {message}\n".encode())

    # -- the protocol -------------------------------------------------------------------------------------
    def chunks(self) -> Iterator[bytes]:
        while (chunk := self._output.get()) is not None:
            yield chunk

    def wait(self) -> int:
        self._done.wait()
        return self.exit_code if self.exit_code is not None else 1

    def cancel(self) -> None:
        """Ask Ray to stop the job (SIGTERM to the entrypoint, SIGKILL a few seconds later); a job still
        waiting for resources is marked stopped here."""
        with self._lock:
            self._canceled.set()
            submission_id = self.submission_id
        if submission_id is not None and not self._done.is_set():
            try:
                self.backend.client().stop(submission_id)
            except Exception:  # noqa: BLE001 - a job that ended meanwhile cannot be stopped, nor needs to be
                pass

    def process_info(self) -> dict:
        return {}


class SpreadHandle:
    """A step spread over nodes, one Ray job each: node 0's output is the step's log (ranks of other
    nodes write their own files), and when one node's job fails the others are stopped, since their
    ranks would wait for it for ever."""

    def __init__(self, handles: list[RayHandle]):
        self.handles = handles
        self.failed: RayHandle | None = None
        threading.Thread(target=self._watch, name="ray-spread", daemon=True).start()

    def _watch(self):
        while not all(h._done.is_set() for h in self.handles):
            failed = next((h for h in self.handles if h._done.is_set() and h.exit_code not in (0, None)), None)
            if failed is not None:
                self.failed = failed
                for other in self.handles:
                    if other is not failed:
                        other.cancel()
                return
            time.sleep(POLL_SECONDS)

    @property
    def error(self) -> str | None:
        return next((h.error for h in [self.failed, *self.handles] if h is not None and h.error), None)

    def chunks(self) -> Iterator[bytes]:
        yield from self.handles[0].chunks()
        for node_rank, handle in enumerate(self.handles[1:], 1):
            for chunk in handle.chunks():
                text = chunk.decode("utf-8", "replace")
                yield "".join(f"[node {node_rank}] {line}\n" for line in text.splitlines()).encode()

    def wait(self) -> int:
        codes = [h.wait() for h in self.handles]
        if self.failed is not None:
            return self.failed.exit_code
        return next((c for c in codes if c != 0), 0)

    def cancel(self) -> None:
        for handle in self.handles:
            handle.cancel()

    def process_info(self) -> dict:
        return {}
