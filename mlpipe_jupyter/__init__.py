"""mlpipe-jupyter: Azure ML SDK v1 pipelines on your own machine.

Every public name is importable from here. They load on first use, so a step script that only
needs ``Run.get_context()`` starts quickly.
"""
from __future__ import annotations

import importlib

from mlpipe_jupyter.version import __version__  # noqa: F401 - mlpipe_jupyter.__version__

_NAMES = {
    "Workspace": "sdk.workspace",
    "Datastore": "sdk.datastore",
    "DataReference": "sdk.data",
    "PipelineData": "sdk.data",
    "OutputFileDatasetConfig": "sdk.data",
    "Dataset": "sdk.data",
    "DataPath": "sdk.data",
    "DataPathComputeBinding": "sdk.data",
    "FileDataset": "sdk.data",
    "TabularDataset": "sdk.data",
    "DatasetConsumptionConfig": "sdk.data",
    "PipelineParameter": "sdk.parameters",
    "PythonScriptStep": "sdk.step",
    "PipelineStep": "sdk.step",
    "StepSequence": "sdk.step",
    "ParallelRunConfig": "sdk.parallel_run",
    "ParallelRunStep": "sdk.parallel_run",
    "EntryScript": "running.parallel_driver",
    "Pipeline": "sdk.pipeline",
    "Environment": "sdk.environment",
    "CondaDependencies": "sdk.environment",
    "RunConfiguration": "sdk.run_config",
    "PyTorchConfiguration": "sdk.distributed",
    "MpiConfiguration": "sdk.distributed",
    "TensorflowConfiguration": "sdk.distributed",
    "ScriptRunConfig": "sdk.run_config",
    "DockerConfiguration": "sdk.run_config",
    "DEFAULT_CPU_IMAGE": "sdk.run_config",
    "DEFAULT_GPU_IMAGE": "sdk.run_config",
    "ContainerRegistry": "sdk.environment",
    "DockerSection": "sdk.environment",
    "PythonSection": "sdk.environment",
    "SparkSection": "sdk.environment",
    "ComputeTarget": "sdk.compute",
    "LocalCompute": "sdk.compute",
    "DockerCompute": "sdk.compute",
    "RayCompute": "sdk.compute",
    "Experiment": "sdk.experiment",
    "Run": "sdk.run",
    "PipelineRun": "sdk.run",
    "StepRun": "sdk.run",
    "PortDataReference": "sdk.run",
    "Model": "sdk.model",
    "Module": "sdk.module",
    "ModuleVersion": "sdk.module",
    "ModuleVersionDescriptor": "sdk.module",
    "InputPortDef": "sdk.module",
    "OutputPortDef": "sdk.module",
    "ModuleStep": "sdk.module",
    "StepRunOutput": "sdk.run",
    "PublishedPipeline": "sdk.published",
    "PipelineEndpoint": "sdk.published",
    "PipelineDraft": "sdk.published",
    "Schedule": "sdk.schedule",
    "ScheduleRecurrence": "sdk.recurrence",
    "TimeZone": "sdk.recurrence",
    "MlpipeError": "errors",
    "UserError": "errors",
    "PipelineValidationError": "errors",
    "ActivityFailedError": "errors",
    "RunHistory": "notebook.run_history",
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
    """``%load_ext mlpipe_jupyter``: the %%step and %pipeline magics, and Azure ML SDK v1's ``azureml``
    import paths (unless the real SDK is installed)."""
    # the notebook layer (IPython, widgets) loads only here: a step script importing Run never pays for it
    from mlpipe_jupyter.compat import enable
    from mlpipe_jupyter.notebook.magics import load_ipython_extension as load

    load(ipython)
    enable()
