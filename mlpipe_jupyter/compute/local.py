"""Local compute: each step is a subprocess in its own working directory, in the current interpreter
or its environment's, contained as compute/process.py starts it (nothing it starts outlives it)."""
from __future__ import annotations

import json
import os
import sys

from mlpipe_jupyter.compute.envbuild import PreparedHandle, build_venv, cached_venv, check_local
from mlpipe_jupyter.compute.launch_ranks import launch_command
from mlpipe_jupyter.compute.process import LocalHandle, start_process
from mlpipe_jupyter.compute.warm import enabled as warm_enabled, start_warm
from mlpipe_jupyter.running import contract
from mlpipe_jupyter.running.protocol import ComputeBackend, Job, register


def python_command(job: Job, interpreter: str | None = None) -> list[str]:
    """The step's command; a distributed step's processes all start on this machine, under one launcher."""
    command = [interpreter or sys.executable, job.script, *job.argv()]
    if job.distributed:
        return launch_command(job.distributed, sys.executable, str(job.run_dir), command)
    return command


# The folder holding this package: a script's ``Run.get_context()`` must import the same version as the
# runner that tails what it writes, even when the package is used from a source checkout.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def step_environ(job: Job, base: dict | None = None, add_package: bool = True) -> dict:
    env = dict(os.environ if base is None else base)
    env.update(job.environment.environment_variables)
    env.update(job.environ())
    env.update(run_context_environ(job))
    pypath = [str(job.working_dir)]
    if env.get("PYTHONPATH"):
        pypath.append(env["PYTHONPATH"])
    if add_package:  # a built virtualenv links the package itself, without the rest of this site-packages
        pypath.append(PACKAGE_PARENT)
    pypath.append(os.path.join(PACKAGE_PARENT, "mlpipe_jupyter", contract.AZUREML_IMPORT_ROOT))
    env["PYTHONPATH"] = os.pathsep.join(pypath)
    return env


def run_context_environ(job: Job, run_dir: str | None = None) -> dict:
    """What Run.get_context() inside the script reads to find its run (Azure's variable names where they exist).

    Only a step on this machine (``run_dir`` not mapped) learns the workspace's folder: a container has
    no workspace mounted, so there ``Run.get_context().experiment.workspace`` says it cannot be reached."""
    workspace = {contract.WORKSPACE_VAR: job.workspace_dir} if run_dir is None and job.workspace_dir else {}
    return {
        **workspace,
        "PYTHONUNBUFFERED": "1",
        contract.RUN_ID_VAR: job.run_id,
        contract.ROOT_RUN_ID_VAR: job.parent_run_id or job.run_id,
        contract.EXPERIMENT_VAR: job.experiment,
        contract.RUN_DIR_VAR: run_dir or str(job.run_dir),
        contract.STEP_NAME_VAR: job.step_name,
        contract.INPUT_DATASETS_VAR: json.dumps(job.input_datasets),
    }


@register("local")
class LocalCompute(ComputeBackend):
    """Runs steps as subprocesses with the current interpreter (or the environment's)."""

    def __init__(self, workspace=None, target_name: str = "local", config: dict | None = None):
        super().__init__(workspace, target_name, config)

    def check(self, step_name: str, environment) -> None:
        """An environment of its own: an interpreter that exists, conda when it needs conda packages."""
        if environment.needs_build or environment.python.interpreter_path:
            check_local(environment, step_name)

    def start(self, job: Job):
        """A user-managed environment runs in its interpreter; any other in its cached virtualenv, built
        first when missing (the build's log streams as the step's first lines)."""
        env = job.environment
        if not env.needs_build:
            return self._spawn(job, env.python.interpreter_path)
        done = cached_venv(self.workspace, env)
        if done is not None:
            done.record(self.workspace, job.run_id)
            return self._spawn(job, done.python, isolated=True)

        def launch(result):
            result.record(self.workspace, job.run_id)
            handle = self._spawn(job, result.python, isolated=True)
            if self.workspace is not None:  # what crash recovery needs, known only now
                self.workspace._store.update_run(job.run_id, **handle.process_info())
            return handle

        return PreparedHandle(lambda log, cancel: build_venv(self.workspace, env, log, job.step_name, cancel), launch)

    def _spawn(self, job: Job, interpreter: str | None, isolated: bool = False):
        """Forked by a warm-start helper where one can run it (compute/warm.py), else a new interpreter."""
        env = step_environ(job, add_package=not isolated)
        handle, why_cold = start_warm(job, interpreter or sys.executable, env)
        if handle is not None:
            handle.start_info = {"warm": True, "seconds": round(handle.start_seconds, 4)}
            return handle
        handle = LocalHandle(start_process(python_command(job, interpreter), cwd=job.working_dir, env=env))
        if warm_enabled():  # with warm starts off (MLPIPE_WARM_START=0) nothing is said: every step starts cold
            handle.start_info = {"warm": False, "why_cold": why_cold}
        return handle
