"""Run configuration (environment, time limit) and ScriptRunConfig, with Azure ML SDK v1 names."""
from __future__ import annotations

from mlpipe_jupyter.sdk.environment import Environment


class RunConfiguration:
    def __init__(self, script=None, arguments=None, framework=None, communicator=None, conda_dependencies=None):
        self.environment = Environment("user-managed")
        self.max_run_duration_seconds = None
        self.target = "local"
        self.environment_variables = {}
        if conda_dependencies is not None:
            self.environment.python.conda_dependencies = conda_dependencies
            self.environment.python.user_managed_dependencies = False


class ScriptRunConfig:
    """One script run on its own, submitted with ``Experiment.submit(config)``."""

    def __init__(self, source_directory=".", script=None, arguments=None, run_config=None,
                 compute_target=None, environment=None, max_run_duration_seconds=None, command=None):
        self.source_directory = source_directory
        self.script = script
        self.arguments = list(arguments or [])
        self.run_config = run_config or RunConfiguration()
        if compute_target is not None:  # as in Azure: it becomes the run configuration's target
            self.run_config.target = compute_target
        if environment is not None:
            self.run_config.environment = environment
        if max_run_duration_seconds is not None:
            self.run_config.max_run_duration_seconds = max_run_duration_seconds

    @property
    def compute_target(self):
        """Where the script runs: ``run_config.target`` (a name or a ComputeTarget)."""
        return self.run_config.target

    @property
    def environment(self):
        return self.run_config.environment

    @property
    def max_run_duration_seconds(self):
        return self.run_config.max_run_duration_seconds
