"""mlpipe-jupyter: Azure ML SDK v1 pipelines on your own machine.

Every public name is importable from here. They load on first use, so a step script that only
needs ``Run.get_context()`` starts quickly.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_NAMES = {
    "Workspace": "core.workspace",
    "Datastore": "core.datastore",
    "DataReference": "core.data",
    "PipelineData": "core.data",
    "OutputFileDatasetConfig": "core.data",
    "Dataset": "core.data",
    "DataPath": "core.data",
    "FileDataset": "core.data",
    "TabularDataset": "core.data",
    "DatasetConsumptionConfig": "core.data",
    "PipelineParameter": "core.parameters",
    "PythonScriptStep": "core.step",
    "Pipeline": "core.pipeline",
    "Environment": "core.environment",
    "CondaDependencies": "core.environment",
    "RunConfiguration": "core.run_config",
    "ScriptRunConfig": "core.run_config",
    "ComputeTarget": "core.compute",
    "LocalCompute": "core.compute",
    "DockerCompute": "core.compute",
    "Experiment": "tracking.experiment",
    "Run": "tracking.run",
    "PipelineRun": "tracking.run",
    "StepRun": "tracking.run",
    "PortDataReference": "tracking.run",
    "MlpipeError": "errors",
    "UserError": "errors",
    "PipelineValidationError": "errors",
    "ActivityFailedError": "errors",
}

__all__ = sorted(_NAMES) + ["load_ipython_extension"]


def __getattr__(name):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'mlpipe_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__


def load_ipython_extension(ipython):
    """``%load_ext mlpipe_jupyter``: the %%step and %pipeline magics."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)
