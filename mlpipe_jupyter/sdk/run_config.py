"""Run configuration (environment, Docker settings, time limit) and ScriptRunConfig, with Azure ML SDK v1
names (azureml.core.runconfig, azureml.core.script_run_config)."""
from __future__ import annotations

import copy
import os
import re
import shlex

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.environment import DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE
from mlpipe_jupyter.sdk import distributed
from mlpipe_jupyter.sdk.compute import target_name
from mlpipe_jupyter.sdk.distributed import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from mlpipe_jupyter.sdk.environment import Environment

__all__ = ["RunConfiguration", "ScriptRunConfig", "DockerConfiguration", "DEFAULT_CPU_IMAGE", "DEFAULT_GPU_IMAGE",
           "MpiConfiguration", "PyTorchConfiguration", "TensorflowConfiguration"]


class DockerConfiguration:
    """Azure's runtime Docker settings of a run. ``use_docker=True`` on local compute runs on the
    ``docker`` target; ``shm_size`` and ``arguments`` join the environment's docker section, which the
    Docker backend gives the container."""

    def __init__(self, use_docker=None, arguments=None, shared_volumes=True, shm_size=None):
        self.use_docker = use_docker
        self.arguments = list(arguments or [])
        self.shared_volumes = shared_volumes
        self.shm_size = shm_size


class RunConfiguration:
    def __init__(self, script=None, arguments=None, framework=None, communicator=None, conda_dependencies=None,
                 command=None):
        self.environment = Environment("user-managed")
        self.environment.python.user_managed_dependencies = True  # no environment: the current interpreter
        self.max_run_duration_seconds = None
        self.target = "local"  # kept as given; the step's compute_target decides where it runs
        self.environment_variables = {}
        self.docker = DockerConfiguration()
        self.script = script
        self.mpi, self.pytorch, self.tensorflow = MpiConfiguration(), PyTorchConfiguration(), TensorflowConfiguration()
        self.arguments = list(arguments or [])
        self.command = command
        self.framework = framework or "Python"
        self.communicator = communicator or "None"
        self.node_count = 1
        if conda_dependencies is not None:
            self.environment.python.conda_dependencies = conda_dependencies
            self.environment.python.user_managed_dependencies = False


class ScriptRunConfig:
    """One script (or a ``python script.py ...`` command) run on its own, submitted with
    ``Experiment.submit(config)``."""

    def __init__(self, source_directory=".", script=None, arguments=None, run_config=None,
                 compute_target=None, environment=None, max_run_duration_seconds=None, command=None,
                 distributed_job_config=None, docker_runtime_config=None, resume_from=None):
        if command is not None and (script is not None or arguments):
            raise UserError("ScriptRunConfig takes either command= or script=/arguments=, not both.")
        self.source_directory = source_directory
        self.command = command
        self.script, self.arguments = _script_of(command) if command is not None else (script, list(arguments or []))
        self.run_config = run_config or RunConfiguration()
        if compute_target is not None:  # as in Azure: it overrides run_config.target, which decides
            self.run_config.target = target_name(compute_target)
        if environment is not None:
            self.run_config.environment = environment
        if max_run_duration_seconds is not None:
            self.run_config.max_run_duration_seconds = max_run_duration_seconds
        self.run_config.command = command
        self.distributed_job_config = distributed_job_config
        if distributed_job_config is not None:
            distributed.apply(self.run_config, distributed_job_config)
            distributed.document_entry(self.run_config)  # a bad count is said here, where it was written
        if docker_runtime_config is not None:
            self._use_docker(docker_runtime_config)

    @property
    def compute_target(self) -> str:
        return self.run_config.target

    def _use_docker(self, config: DockerConfiguration):
        self.run_config.docker = config
        if config.use_docker and self.run_config.target == "local":
            self.run_config.target = "docker"
        changes = {"shm_size": config.shm_size, "arguments": list(config.arguments),
                   "shared_volumes": config.shared_volumes}
        env = self.run_config.environment
        if any(getattr(env.docker, k) != v for k, v in changes.items() if v is not None):
            env = copy.deepcopy(env)  # the caller's environment object stays as it was
            for key, value in changes.items():
                if value is not None:
                    setattr(env.docker, key, value)
            self.run_config.environment = env

    @property
    def environment(self):
        return self.run_config.environment

    @property
    def max_run_duration_seconds(self):
        return self.run_config.max_run_duration_seconds


_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")


def _script_of(command) -> tuple[str, list]:
    """``python train.py --lr 0.1`` (a list, whose items may be data objects, or a string) as the step's
    script and arguments: the script then runs in its environment's interpreter, locally or in Docker."""
    parts = shlex.split(command) if isinstance(command, str) else list(command)
    shell = isinstance(command, str) and any(op in command for op in ("&&", "||", ";", "|", ">", "<", "`", "$("))
    if parts and isinstance(parts[0], str) and _PYTHON.fullmatch(os.path.basename(parts[0])):
        rest = list(parts[1:])
        while rest and rest[0] in ("-u", "-B", "-O", "-OO"):  # interpreter flags that change nothing here
            rest.pop(0)
        if rest and isinstance(rest[0], str) and rest[0].endswith(".py") and not shell:
            return rest[0], rest[1:]
    raise UserError(f"ScriptRunConfig command {command!r} is not of the form 'python <script>.py [arguments]': "
                    "only that form runs here (shell commands, 'python -m' and other programs do not yet). "
                    "Put the work in a Python script, or use script= and arguments=.")
