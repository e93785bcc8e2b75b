"""Which names each ``azureml`` module exports in SDK v1, and where ours come from.

A value of ``None`` is the public name of the same spelling in ``mlpipe_jupyter``; ``"module:attr"``
names anything else. Every module here has a file under ``root/`` that loads its names on first use,
so ``from azureml.core import Run`` in a step script costs what ``from mlpipe_jupyter import Run`` does.
"""
from __future__ import annotations

import importlib

CLOUD = "mlpipe_jupyter.compat.cloud"
RUNCONFIG = {"RunConfiguration": None, "DockerConfiguration": None, "DEFAULT_CPU_IMAGE": None,
             "DEFAULT_GPU_IMAGE": None, "MpiConfiguration": None,
             "PyTorchConfiguration": None, "TensorflowConfiguration": None, "CondaDependencies": None,
             "DockerSection": "mlpipe_jupyter.sdk.environment:DockerSection",
             "PythonSection": "mlpipe_jupyter.sdk.environment:PythonSection",
             "SparkSection": "mlpipe_jupyter.sdk.environment:SparkSection"}
COMPUTE = {"ComputeTarget": None, "AmlCompute": f"{CLOUD}:AmlCompute", "ComputeInstance": f"{CLOUD}:ComputeInstance",
           "RemoteCompute": f"{CLOUD}:RemoteCompute", "AksCompute": f"{CLOUD}:AksCompute",
           "DatabricksCompute": f"{CLOUD}:DatabricksCompute", "AdlaCompute": f"{CLOUD}:AdlaCompute",
           "HDInsightCompute": f"{CLOUD}:HDInsightCompute", "DataFactoryCompute": f"{CLOUD}:DataFactoryCompute",
           "KubernetesCompute": f"{CLOUD}:KubernetesCompute", "SynapseCompute": f"{CLOUD}:SynapseCompute",
           "LocalCompute": None, "DockerCompute": None}
PIPELINE_CORE = {"Pipeline": None, "PipelineData": None, "PipelineParameter": None, "PipelineRun": None,
                 "StepRun": None, "StepRunOutput": None, "PortDataReference": None, "StepSequence": None,
                 "PipelineStep": None, "PipelineDataset": f"{CLOUD}:PipelineDataset",
                 "TrainingOutput": f"{CLOUD}:TrainingOutput", "InputPortBinding": "mlpipe_jupyter.sdk.data:InputBinding",
                 "OutputPortBinding": f"{CLOUD}:OutputPortBinding",
                 "PublishedPipeline": None, "PipelineEndpoint": None, "PipelineDraft": None,
                 "Schedule": None, "ScheduleRecurrence": None, "TimeZone": None,
                 "Module": None, "ModuleVersion": None, "ModuleVersionDescriptor": None}
EXCEPTIONS = {name: f"{CLOUD}:{name}" for name in (
    "AzureMLException", "UserErrorException", "ComputeTargetException", "ActivityFailedException",
    "ExperimentExecutionException", "ProjectSystemException", "AuthenticationException", "WebserviceException",
    "ModelNotFoundException", "RunEnvironmentException", "TrainingException", "SnapshotException",
    "DiscoveryUrlNotFoundException", "ModelPathNotFoundException", "ServiceException")}

EXPORTS: dict[str, dict[str, str | None]] = {
    "azureml": {},
    "azureml.core": {
        "VERSION": f"{CLOUD}:VERSION", "__version__": f"{CLOUD}:VERSION", "Workspace": f"{CLOUD}:Workspace",
        "Experiment": None, "Run": None, "ScriptRun": "mlpipe_jupyter.sdk.run:Run", "ScriptRunConfig": None,
        "RunConfiguration": None, "Environment": None, "Datastore": f"{CLOUD}:Datastore", "Dataset": None, "Model": None,
        "ComputeTarget": None, "ContainerRegistry": None, "DockerConfiguration": None, "get_run": f"{CLOUD}:get_run",
        "Keyvault": f"{CLOUD}:Keyvault", "Webservice": f"{CLOUD}:Webservice", "Image": f"{CLOUD}:Image",
        "LinkedService": f"{CLOUD}:LinkedService"},
    "azureml.core.workspace": {"Workspace": f"{CLOUD}:Workspace"},
    "azureml.core.experiment": {"Experiment": None},
    "azureml.core.run": {"Run": None, "get_run": f"{CLOUD}:get_run"},
    "azureml.core.script_run": {"ScriptRun": "mlpipe_jupyter.sdk.run:Run"},
    "azureml.core.script_run_config": {"ScriptRunConfig": None},
    "azureml.core.runconfig": RUNCONFIG,
    "azureml.core.environment": {"Environment": None, "CondaDependencies": None,
                                 "PythonSection": "mlpipe_jupyter.sdk.environment:PythonSection",
                                 "DockerSection": "mlpipe_jupyter.sdk.environment:DockerSection",
                                 "SparkSection": "mlpipe_jupyter.sdk.environment:SparkSection",
                                 "ContainerRegistry": None},
    "azureml.core.conda_dependencies": {"CondaDependencies": None},
    "azureml.core.container_registry": {"ContainerRegistry": None},
    "azureml.core.compute": COMPUTE,
    "azureml.core.compute_target": {"ComputeTargetException": f"{CLOUD}:ComputeTargetException",
                                    "LocalTarget": f"{CLOUD}:LocalTarget"},
    "azureml.core.dataset": {"Dataset": None},
    "azureml.core.datastore": {"Datastore": f"{CLOUD}:Datastore"},
    "azureml.core.model": {"Model": None, "InferenceConfig": f"{CLOUD}:InferenceConfig"},
    "azureml.core.authentication": {name: f"{CLOUD}:{name}" for name in (
        "InteractiveLoginAuthentication", "AzureCliAuthentication", "ServicePrincipalAuthentication",
        "MsiAuthentication", "TokenAuthentication", "AbstractAuthentication")},
    "azureml.data": {"FileDataset": None, "TabularDataset": None, "OutputFileDatasetConfig": None,
                     "DataType": f"{CLOUD}:DataType"},
    "azureml.data.data_reference": {"DataReference": None},
    "azureml.data.datapath": {"DataPath": None, "DataPathComputeBinding": None},
    "azureml.data.output_dataset_config": {"OutputFileDatasetConfig": None,
                                           "OutputDatasetConfig": "mlpipe_jupyter.sdk.data:PipelineData"},
    "azureml.data.dataset_consumption_config": {"DatasetConsumptionConfig": None},
    "azureml.data.file_dataset": {"FileDataset": None},
    "azureml.data.azure_storage_datastore": {"AzureBlobDatastore": f"{CLOUD}:Datastore",
                                             "AzureFileDatastore": f"{CLOUD}:Datastore"},
    "azureml.data.tabular_dataset": {"TabularDataset": None},
    "azureml.pipeline": {},
    "azureml.pipeline.core": PIPELINE_CORE,
    "azureml.pipeline.core.graph": {"PipelineParameter": None, "PipelineDataset": f"{CLOUD}:PipelineDataset",
                                    "InputPortBinding": "mlpipe_jupyter.sdk.data:InputBinding",
                                    "OutputPortBinding": f"{CLOUD}:OutputPortBinding",
                                    "InputPortDef": None, "OutputPortDef": None, "PublishedPipeline": None},
    "azureml.pipeline.core.module": {"Module": None, "ModuleVersion": None, "ModuleVersionDescriptor": None},
    "azureml.pipeline.core.pipeline": {"Pipeline": None},
    "azureml.pipeline.core.published_pipeline": {"PublishedPipeline": None},
    "azureml.pipeline.core.pipeline_endpoint": {"PipelineEndpoint": None},
    "azureml.pipeline.core.pipeline_draft": {"PipelineDraft": None},
    "azureml.pipeline.core.builder": {"PipelineStep": None, "StepSequence": None},
    "azureml.pipeline.core.run": {"PipelineRun": None, "StepRun": None, "StepRunOutput": None,
                                  "PortDataReference": None},
    "azureml.pipeline.core.schedule": {"Schedule": None, "ScheduleRecurrence": None, "TimeZone": None},
    "azureml.pipeline.core.pipeline_output_dataset": {"PipelineOutputFileDataset": f"{CLOUD}:PipelineDataset"},
    "azureml.pipeline.steps": {
        "PythonScriptStep": None, "ParallelRunStep": None, "ParallelRunConfig": None, "ModuleStep": None,
        **{name: f"{CLOUD}:{name}" for name in (
            "EstimatorStep", "HyperDriveStep", "AutoMLStep", "AutoMLStepRun", "DataTransferStep", "DatabricksStep",
            "AdlaStep", "MpiStep", "CommandStep", "SynapseSparkStep", "KustoStep",
            "AzureBatchStep", "HyperDriveStepRun")}},
    "azureml.contrib": {},
    "azureml.contrib.pipeline": {},
    "azureml.contrib.pipeline.steps": {"ParallelRunStep": None, "ParallelRunConfig": None},
    "azureml.train": {},
    "azureml.train.automl": {"AutoMLConfig": f"{CLOUD}:AutoMLConfig"},
    "azureml.train.hyperdrive": {name: f"{CLOUD}:{name}" for name in (
        "HyperDriveConfig", "RandomParameterSampling", "GridParameterSampling", "BayesianParameterSampling",
        "BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy", "PrimaryMetricGoal", "choice",
        "uniform", "loguniform", "normal", "quniform")},
    "azureml.widgets": {"RunDetails": "mlpipe_jupyter.notebook.run_details:RunDetails"},
    "azureml.exceptions": EXCEPTIONS,
    "azureml_user": {},
    "azureml_user.parallel_run": {"EntryScript": None},
}


class NotExported(AttributeError):
    pass


def resolve(module: str, name: str):
    """The object ``module.name`` stands for."""
    target = EXPORTS[module].get(name)
    if name not in EXPORTS[module]:
        raise NotExported(f"module {module!r} has no attribute {name!r} in mlpipe-jupyter's azureml layer")
    path, _, attr = (target or f"mlpipe_jupyter:{name}").partition(":")
    try:
        return getattr(importlib.import_module(path), attr)
    except (ImportError, AttributeError) as e:
        raise NotExported(f"{module}.{name} is not available in mlpipe-jupyter's azureml layer ({e}).") from None


def module_attributes(module: str):
    """``__getattr__``, ``__dir__`` and ``__all__`` for one azureml module: names load on first use."""
    names = sorted(EXPORTS[module])
    namespace = importlib.import_module(module).__dict__

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = resolve(module, name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__, names
