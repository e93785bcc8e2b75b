"""Docker compute: each step runs in a container from its environment's image.

The step's snapshot copy is mounted read-only (with its ./outputs and ./logs writable), each input
read-only, each output and the step's run folder writable, this package read-only on PYTHONPATH so
``Run.get_context()`` works without installing anything; nothing else of the host. The container runs
as the host user (files it writes are the user's), or, when the host user is root, as the
unprivileged ``STEP_USER`` (its files are given back to root afterwards). It has an init process (so
a stop reaches the script), no capabilities, no new privileges (setuid binaries of the image do not
help), a bounded number of processes, and no network unless the target asks for it. Every container
carries the label ``mlpipe.managed`` and the identity of the process that started it, and is removed
when the step ends, however it ends; if that process dies first, the next one to open the workspace
removes it.
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from pathlib import Path
from typing import Iterator

from mlpipe_jupyter.model.environment import EnvironmentDefinition, default_environment
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.running import contract
from mlpipe_jupyter.running.protocol import ComputeBackend, Job, register
from mlpipe_jupyter.running.step_files import chown_tree
from mlpipe_jupyter.store import hostname, process_start_time
from mlpipe_jupyter.compute import envbuild, launch_ranks
from mlpipe_jupyter.compute.launch_ranks import launch_command
from mlpipe_jupyter.compute.envbuild import LABEL, Cancel
from mlpipe_jupyter.compute.local import run_context_environ

WD = "/mlpipe/wd"
RUN = "/mlpipe/run"
LIB = "/mlpipe/lib"
HOME = "/tmp"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
STOP_GRACE_SECONDS = 3
STEP_USER = (65534, 65534)  # "nobody": who a step runs as when the host user is root


def step_user() -> tuple[int, int] | None:
    """The uid:gid a step runs as when it is not the host user's own (a root host), else None."""
    return STEP_USER if os.getuid() == 0 else None


def container_path(kind: str, name: str, host: Path) -> str:
    """Inputs keep their file or folder name under /mlpipe/inputs/<input>; outputs sit in /mlpipe/outputs/<output>."""
    return f"/mlpipe/{kind}s/{name}/{Path(host).name}"


@register("docker")
class DockerBackend(ComputeBackend):
    """The ``docker`` kind of compute target."""

    inputs_read_only = True  # inputs are read-only bind mounts
    working_dir_seen = WD  # where the step's tracebacks say its files are (running/tracebacks.py maps them back)

    def __init__(self, workspace=None, target_name="docker", config: dict | None = None):
        super().__init__(workspace, target_name, config)
        if isinstance(self.config.get("environment"), str):  # a registered environment, by name
            self.config["environment"] = EnvironmentDefinition.get(workspace, self.config["environment"]).to_dict()
        self._swept = False

    @classmethod
    def recover(cls, runs: list[dict], targets: dict) -> None:
        """A runner that died left its containers running: remove them (and every orphan of this host)."""
        sweep_orphans()

    # -- before anything runs -------------------------------------------------------------------------------
    def check(self, step_name: str, env: EnvironmentDefinition) -> None:
        """Missing engine or image: one clear error naming the step and environment, before the run starts."""
        env = step_environment_for(env, self.config)
        problem = envbuild.engine_problem()
        if problem:
            raise UserError(f"Step '{step_name}' runs on Docker target '{self.target_name}' with environment "
                            f"'{env.name}', but {problem}. Start Docker (scripts/docker_engine.sh sets one up), "
                            "or run the step on 'local'.")
        if not env.docker.base_dockerfile:
            base = envbuild.base_image_of(env, self.config.get("image"))
            if envbuild.image_id(base) is None:
                raise UserError(f"Step '{step_name}' on Docker target '{self.target_name}': "
                                + envbuild.missing_image_message(base, env, None))
        if not self._swept:
            self._swept = True
            sweep_orphans()

    def start(self, job: Job) -> "DockerHandle":
        return DockerHandle(self, job)

    # -- the container ------------------------------------------------------------------------------------
    @staticmethod
    def _command(job: Job, python: str) -> list[str]:
        """The step's command in the container; a distributed step's processes all start in it."""
        command = [python, job.script, *job.argv(container_path)]
        if not job.distributed:
            return command
        launcher = f"{LIB}/{PACKAGE_DIR.name}/{Path(launch_ranks.__file__).relative_to(PACKAGE_DIR)}"
        return launch_command(job.distributed, python, RUN, command, launcher=launcher)

    def container_spec(self, job: Job, image: str, python: str) -> dict:
        from docker.types import Mount

        def bind(host, target, writable=False):
            return Mount(str(target), str(host), type="bind", read_only=not writable)

        mounts = [bind(job.working_dir, WD), bind(job.working_dir / "outputs", f"{WD}/outputs", True),
                  bind(job.working_dir / "logs", f"{WD}/logs", True), bind(job.run_dir, RUN, True),
                  bind(PACKAGE_DIR, f"{LIB}/{PACKAGE_DIR.name}")]
        mounts += [bind(host, container_path("input", name, host)) for name, host in job.inputs.items()]
        # An output's parent folder, so that a step can create a file output too.
        mounts += [bind(Path(host).parent, Path(container_path("output", name, host)).parent, True)
                   for name, host in job.outputs.items()]
        for m in self.config.get("mounts") or []:
            host, target, *mode = str(m).split(":")
            mounts.append(bind(host, target, (mode or ["rw"])[0] == "rw"))
        datasets = {k: {**v, "path": container_path("input", k, job.inputs[k]) if k in job.inputs else v.get("path")}
                    for k, v in job.input_datasets.items()}
        env = job.environment
        environment = {**env.environment_variables, **job.environ(container_path)}
        environment.update(run_context_environ(job, RUN))
        environment.update({"MLPIPE_INPUT_DATASETS": json.dumps(datasets), "HOME": HOME,
                            "PYTHONPATH": f"{WD}:{LIB}:{LIB}/{PACKAGE_DIR.name}/{contract.AZUREML_IMPORT_ROOT}",
                            "PYTHONDONTWRITEBYTECODE": "1"})
        network = self.config.get("network")
        uid, gid = step_user() or (os.getuid(), os.getgid())
        spec = dict(
            image=image, command=self._command(job, python), working_dir=WD,
            mounts=mounts, environment=environment, user=f"{uid}:{gid}", init=True,
            privileged=False, detach=True, labels=container_labels(job),
            network_mode={True: "bridge", "bridge": "bridge", "host": "host"}.get(network, "none"),
            **envbuild.hardening(self.config.get("pids_limit")),
        )
        if self.config.get("cpu_count"):
            spec["nano_cpus"] = int(float(self.config["cpu_count"]) * 1e9)
        if self.config.get("memory_gb"):
            spec["mem_limit"] = f"{int(float(self.config['memory_gb']) * 1024)}m"
        if env.docker.shm_size:  # Azure's DockerSection/DockerConfiguration shm_size, e.g. "2g"
            spec["shm_size"] = env.docker.shm_size
        if self.config.get("gpu_count"):
            import docker.types

            spec["device_requests"] = [docker.types.DeviceRequest(count=int(self.config["gpu_count"]),
                                                                  capabilities=[["gpu"]])]
        return spec


def step_environment_for(env: EnvironmentDefinition, config: dict) -> EnvironmentDefinition:
    target_env = config.get("environment")
    if isinstance(target_env, dict) and env.content_hash == default_environment().content_hash:
        return EnvironmentDefinition.from_dict(target_env)
    return env


def container_labels(job: Job) -> dict:
    return {LABEL: "step", "mlpipe.run_id": job.run_id, "mlpipe.step": job.step_name, **envbuild.runner_labels()}


def sweep_orphans(timeout: int = 10) -> int:
    """Remove step and build containers whose runner died (a killed kernel): nothing else would ever
    stop them. Quick to give up: it runs when a workspace is opened."""
    import docker

    removed = 0
    try:
        client = docker.from_env(timeout=timeout)
        # The plain listing, not containers.list(): that inspects each container after listing, and one
        # removed in between (a step ending) would make the whole sweep give up.
        containers = client.api.containers(all=True, filters={"label": LABEL})
    except Exception:  # noqa: BLE001 - a sweep must never stop a run
        return 0
    for c in containers:
        labels = c.get("Labels") or {}
        if labels.get(LABEL) not in ("step", "build") or labels.get("mlpipe.runner_host") != hostname():
            continue
        pid = int(labels.get("mlpipe.runner_pid") or 0)
        alive = pid and str(process_start_time(pid) or "") == labels.get("mlpipe.runner_start")
        if not alive:
            with contextlib.suppress(Exception):
                client.api.remove_container(c["Id"], force=True)
                removed += 1
    return removed


class DockerHandle:
    """One step in one container: build its image if needed, run, stream lines, remove."""

    def __init__(self, backend: DockerBackend, job: Job):
        self.backend, self.job = backend, job
        self.error: str | None = None
        self.exit_code: int | None = None
        self.container = None
        self.build: envbuild.BuildResult | None = None
        self._cancel = Cancel()
        self._lock = threading.Lock()
        self._output: queue.Queue = queue.Queue()  # bytes, then None at the end
        self._done = threading.Event()
        threading.Thread(target=self._run, name=f"docker-{job.step_name}", daemon=True).start()

    def _run(self):
        import docker.errors

        job = self.job
        env = step_environment_for(job.environment, self.backend.config)
        user = step_user()
        try:
            self.build = envbuild.build_image(env, log=self._say, step=job.step_name,
                                              base=envbuild.base_image_of(env, self.backend.config.get("image")),
                                              cancel=self._cancel)
            with contextlib.suppress(Exception):  # a missing record must not stop the step
                self.build.record(self.backend.workspace, job.run_id)
            if self._cancel.is_set():
                self.exit_code = -15
                return
            spec = self.backend.container_spec(job, self.build.artifact, self.build.python)
            if user is not None and job.scratch is not None:  # the step's own folder is the step user's
                chown_tree(job.scratch, *user)
            client = envbuild.docker_client()
            with self._lock:
                if self._cancel.is_set():
                    self.exit_code = -15
                    return
                self.container = client.containers.create(**spec)
                self.container.start()  # under the lock, so a cancel sees a started container or none
            for chunk in self.container.logs(stream=True, follow=True):
                self._output.put(chunk)
            self.exit_code = self.container.wait().get("StatusCode", 1)
        except UserError as e:
            self._fail(str(e))
        except docker.errors.DockerException as e:
            self._fail(f"Step '{job.step_name}' with environment '{env.name}' could not run on Docker: "
                       f"{getattr(e, 'explanation', None) or e}")
        except Exception as e:  # noqa: BLE001 - shown as the step's error rather than lost in a thread
            self._fail(f"Step '{job.step_name}' could not run on Docker: {type(e).__name__}: {e}")
        finally:
            self._remove()
            if user is not None and job.scratch is not None:  # what the step wrote is the host user's again
                with contextlib.suppress(OSError):
                    chown_tree(job.scratch, os.getuid(), os.getgid())
            self._output.put(None)
            self._done.set()

    def _say(self, line: str):
        self._output.put(line.encode("utf-8", "replace") + b"\n")

    def _fail(self, message: str):
        self.error = message
        self.exit_code = 1
        self._say(f"ERROR: {message}")

    def _remove(self):
        with self._lock:
            container, self.container = self.container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)

    # -- the protocol -------------------------------------------------------------------------------------
    def chunks(self) -> Iterator[bytes]:
        while (chunk := self._output.get()) is not None:
            yield chunk

    def wait(self) -> int:
        self._done.wait()
        return self.exit_code if self.exit_code is not None else 1

    def cancel(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Stop (SIGTERM, then SIGKILL after the grace period); the run thread then removes the container."""
        self._cancel.set()
        with self._lock:
            container = self.container
        if container is not None:
            with contextlib.suppress(Exception):
                container.stop(timeout=int(grace_seconds))

    def process_info(self) -> dict:
        return {}
