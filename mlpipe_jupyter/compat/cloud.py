"""Azure ML's cloud-only calls, each mapped to its nearest local meaning with a one-line notice.

A notebook written for Azure must run top to bottom: it finds its workspace by subscription, creates a
cluster, asks for an authentication header. Here those open or create a local workspace, register a
compute target that runs where the workspace maps it, and return the header our server accepts. What
cannot have a local meaning (AutoML, Databricks, ...) fails with one sentence naming the call.
"""
from __future__ import annotations

import os
from pathlib import Path

from mlpipe_jupyter import errors
from mlpipe_jupyter.compat import say_once
from mlpipe_jupyter.sdk import workspace as _workspace
from mlpipe_jupyter.sdk.compute import ComputeTarget, _ProvisioningConfiguration
from mlpipe_jupyter.sdk.datastore import Datastore as _Datastore
from mlpipe_jupyter.sdk.run import Run

VERSION = "1.61.0"  # azureml-core's last SDK v1 release: the names and behaviour this layer follows

# -- exceptions: Azure's names for the errors the engine raises -------------------------------------------
AzureMLException = errors.MlpipeError
UserErrorException = errors.UserError
ComputeTargetException = errors.ComputeTargetError
ActivityFailedException = errors.ActivityFailedError
ProjectSystemException = errors.WorkspaceNotFoundError


class ExperimentExecutionException(errors.MlpipeError):
    pass


class AuthenticationException(errors.MlpipeError):
    pass


class WebserviceException(errors.MlpipeError):
    pass


class ModelNotFoundException(errors.UserError):
    pass


class ModelPathNotFoundException(errors.UserError):
    pass


class RunEnvironmentException(errors.MlpipeError):
    pass


class TrainingException(errors.MlpipeError):
    pass


class SnapshotException(errors.UserError):
    pass


class DiscoveryUrlNotFoundException(errors.MlpipeError):
    pass


class ServiceException(errors.MlpipeError):
    pass


# -- the workspace ------------------------------------------------------------------------------------------
def _local_workspace(name, subscription_id=None, resource_group=None, location=None, start=None):
    """The local workspace named ``name``: the nearest one at or above ``start`` (default: here) if it
    has that name, else a new one here (or in ``./<name>`` when here already holds another)."""
    start = Path(start or os.getcwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / _workspace.WORKSPACE_DIR / "config.json").is_file():
            found = _workspace.Workspace(folder)
            if name is None or found.name == name:
                return found
            break
    name = name or start.name or "workspace"
    home = start if not (start / _workspace.WORKSPACE_DIR).exists() else start / name
    say_once(f"workspace-{name}", f"Azure ML workspace '{name}' is the local workspace in {home} "
                                  f"(created now; runs and data stay on this machine).")
    return _workspace.Workspace.create(name, path=home, exist_ok=True, subscription_id=subscription_id,
                                       resource_group=resource_group, location=location)


def _azure_config(path=None, file_name=None):
    """Azure's config.json (``workspace_name``, ``subscription_id``, ``resource_group``) at or above ``path``."""
    import json

    start = Path(path or os.getcwd()).resolve()
    if start.is_file():
        return json.loads(start.read_text()), start.parent
    names = [file_name] if file_name else ["config.json"]
    for folder in (start, *start.parents):
        for sub in (".azureml", "aml_config", ""):
            for n in names:
                candidate = folder / sub / n
                if candidate.is_file():
                    try:
                        doc = json.loads(candidate.read_text())
                    except ValueError:
                        continue
                    if isinstance(doc, dict) and ("workspace_name" in doc or "subscription_id" in doc):
                        return doc, folder
    return None, start


class Workspace(_workspace.Workspace):
    """Azure's ``Workspace(subscription_id, resource_group, workspace_name)``: a local workspace by name."""

    def __init__(self, subscription_id=None, resource_group=None, workspace_name=None, auth=None,
                 _location=None, _disable_service_check=False, _workspace_id=None, sku="basic", tags=None,
                 _cloud="AzureCloud", path=None):
        if path is not None:  # an opened workspace's folder (the class methods below)
            super().__init__(path)
            return
        found = _local_workspace(workspace_name, subscription_id, resource_group, _location)
        super().__init__(found.path)

    @staticmethod
    def get(name, auth=None, subscription_id=None, resource_group=None, location=None, cloud="AzureCloud", id=None):
        return Workspace(subscription_id, resource_group, name, _location=location)

    @staticmethod
    def from_config(path=None, auth=None, _logger=None, _file_name=None):
        """The local workspace at or above ``path``; else the one Azure's config.json names (made here)."""
        try:
            return Workspace(path=_workspace.Workspace.from_config(path).path)
        except errors.WorkspaceNotFoundError:
            pass
        doc, folder = _azure_config(path, _file_name)
        doc = doc or {}
        found = _local_workspace(doc.get("workspace_name"), doc.get("subscription_id"), doc.get("resource_group"),
                                 doc.get("location"), start=folder)
        return Workspace(path=found.path)

    @staticmethod
    def create(name, auth=None, subscription_id=None, resource_group=None, location=None,
               create_resource_group=True, sku="basic", tags=None, friendly_name=None, storage_account=None,
               key_vault=None, app_insights=None, container_registry=None, exist_ok=False, show_output=True,
               path=None, **kwargs):
        ws = _workspace.Workspace.create(name, path=path or ".", exist_ok=exist_ok, subscription_id=subscription_id,
                                         resource_group=resource_group, location=location)
        return Workspace(path=ws.path)

    @staticmethod
    def list(subscription_id=None, auth=None, resource_group=None):
        try:
            ws = _workspace.Workspace.from_config()
        except errors.WorkspaceNotFoundError:
            return {}
        return {ws.name: [Workspace(path=ws.path)]}

    def write_config(self, path=None, file_name=None):
        """Write Azure's config.json (``.azureml/config.json``) naming this workspace, as Azure does."""
        import json

        folder = Path(path or ".") / ".azureml"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (file_name or "config.json")
        target.write_text(json.dumps({"subscription_id": self.subscription_id, "resource_group": self.resource_group,
                                      "workspace_name": self.name}, indent=4))
        return str(target)

    def delete(self, delete_dependent_resources=False, no_wait=False):
        raise errors.UserError(f"Workspace.delete: remove the folder '{self.folder}' to delete this local workspace.")


# -- compute ------------------------------------------------------------------------------------------------
class AmlCompute(ComputeTarget):
    """An Azure ML cluster. Here it runs where the workspace config maps its name (local by default)."""

    def __init__(self, workspace, name):
        super().__init__(workspace, name)

    @staticmethod
    def provisioning_configuration(vm_size="", vm_priority="dedicated", min_nodes=0, max_nodes=None,
                                   idle_seconds_before_scaledown=None, admin_username=None, admin_user_password=None,
                                   admin_user_ssh_key=None, vnet_resourcegroup_name=None, vnet_name=None,
                                   subnet_name=None, tags=None, description=None, remote_login_port_public_access="NotSpecified",
                                   identity_type=None, identity_id=None, location=None, enable_node_public_ip=True):
        say_once("amlcompute", "AmlCompute clusters run on this machine: local compute, or what "
                               "'compute_targets' in the workspace's .mlpipe/config.json maps the name to "
                               "(for example {\"cpu-cluster\": \"docker\"}).")
        return _ProvisioningConfiguration(None, vm_size=vm_size, min_nodes=min_nodes, max_nodes=max_nodes)

    @staticmethod
    def supported_vmsizes(workspace, location=None):
        return [{"name": "local", "vCPUs": os.cpu_count(), "gpus": 0, "memoryGB": None}]


class ComputeInstance(AmlCompute):
    """An Azure ML compute instance: this machine."""

    @staticmethod
    def provisioning_configuration(vm_size="", ssh_public_access=False, admin_user_ssh_public_key=None,
                                   vnet_resourcegroup_name=None, vnet_name=None, subnet_name=None, tags=None,
                                   description=None, assigned_user_object_id=None, assigned_user_tenant_id=None,
                                   **kwargs):
        return AmlCompute.provisioning_configuration(vm_size=vm_size, max_nodes=1)


class RemoteCompute(AmlCompute):
    """A VM attached to Azure ML: steps run here instead."""

    @staticmethod
    def attach_configuration(address=None, ssh_port=22, username=None, password=None, private_key_file=None,
                             private_key_passphrase=None, resource_id=None):
        return AmlCompute.provisioning_configuration(max_nodes=1)


class LocalTarget:
    pass


def _cloud_only(name: str, what: str, instead: str = ""):
    """A class standing for an Azure-only feature: any use raises one sentence naming the call."""

    def refuse(*args, **kwargs):
        raise errors.NotAvailableLocallyError(
            f"{name} needs {what}, which has no local meaning; mlpipe-jupyter cannot run it on this machine."
            + (f" {instead}" if instead else ""))

    class CloudOnly:
        def __init__(self, *args, **kwargs):
            refuse()

    CloudOnly.__name__ = CloudOnly.__qualname__ = name.split(".")[-1].split("(")[0]
    for verb in ("create", "attach", "attach_configuration", "provisioning_configuration", "get", "list", "register"):
        setattr(CloudOnly, verb, staticmethod(refuse))
    return CloudOnly


_SCRIPT = "Use a PythonScriptStep (or ScriptRunConfig) with your own code instead."
AutoMLConfig = _cloud_only("AutoMLConfig", "Azure's Automated ML service", _SCRIPT)
AutoMLStep = _cloud_only("AutoMLStep", "Azure's Automated ML service", _SCRIPT)
AutoMLStepRun = _cloud_only("AutoMLStepRun", "Azure's Automated ML service")
DatabricksCompute = _cloud_only("DatabricksCompute", "an Azure Databricks workspace")
DatabricksStep = _cloud_only("DatabricksStep", "an Azure Databricks workspace", _SCRIPT)
AdlaCompute = _cloud_only("AdlaCompute", "Azure Data Lake Analytics")
AdlaStep = _cloud_only("AdlaStep", "Azure Data Lake Analytics (U-SQL)")
HDInsightCompute = _cloud_only("HDInsightCompute", "an Azure HDInsight cluster")
SynapseCompute = _cloud_only("SynapseCompute", "an Azure Synapse workspace")
SynapseSparkStep = _cloud_only("SynapseSparkStep", "an Azure Synapse Spark pool", _SCRIPT)
KustoStep = _cloud_only("KustoStep", "Azure Data Explorer")
AzureBatchStep = _cloud_only("AzureBatchStep", "Azure Batch", _SCRIPT)
DataFactoryCompute = _cloud_only("DataFactoryCompute", "Azure Data Factory")
DataTransferStep = _cloud_only("DataTransferStep", "Azure Data Factory to copy between cloud stores",
                               "Copy the data with a PythonScriptStep, or point a Datastore at a local folder.")
AksCompute = _cloud_only("AksCompute", "an Azure Kubernetes Service cluster for web services")
KubernetesCompute = _cloud_only("KubernetesCompute", "an Azure Arc Kubernetes cluster")
Webservice = _cloud_only("Webservice", "Azure model deployment")
InferenceConfig = _cloud_only("InferenceConfig", "Azure model deployment")
Image = _cloud_only("Image", "Azure model deployment")
Keyvault = _cloud_only("Keyvault", "an Azure Key Vault", "Read secrets from environment variables instead.")
LinkedService = _cloud_only("LinkedService", "an Azure Synapse linked service")
EstimatorStep = _cloud_only("EstimatorStep", "the deprecated Estimator API",
                            "Use a PythonScriptStep with a RunConfiguration, as Azure recommends.")
MpiStep = _cloud_only("MpiStep", "an MPI cluster", _SCRIPT)
CommandStep = _cloud_only("CommandStep", "a command step, not supported yet", _SCRIPT)
_HYPERDRIVE = "Azure's HyperDrive tuning service"
HyperDriveStep = _cloud_only("HyperDriveStep", _HYPERDRIVE, "Loop over parameter values with Experiment.submit instead.")
HyperDriveStepRun = _cloud_only("HyperDriveStepRun", _HYPERDRIVE)
HyperDriveConfig = _cloud_only("HyperDriveConfig", _HYPERDRIVE, "Loop over parameter values with Experiment.submit instead.")
RandomParameterSampling = GridParameterSampling = BayesianParameterSampling = HyperDriveConfig
BanditPolicy = MedianStoppingPolicy = TruncationSelectionPolicy = HyperDriveConfig


class PrimaryMetricGoal:
    MAXIMIZE, MINIMIZE = "MAXIMIZE", "MINIMIZE"


def _sampling_expression(kind):
    def expression(*args):
        return [kind, list(args)]
    return expression


choice, uniform, loguniform, normal, quniform = (_sampling_expression(k) for k in
                                                  ("choice", "uniform", "loguniform", "normal", "quniform"))

class DataType:
    """Column types for ``TabularDataset`` (kept; the reader infers types)."""

    @staticmethod
    def to_string():
        return "string"

    @staticmethod
    def to_long():
        return "long"

    @staticmethod
    def to_float(decimal_mark="."):
        return "float"

    @staticmethod
    def to_bool():
        return "bool"

    @staticmethod
    def to_datetime(formats=None):
        return "datetime"


class TrainingOutput:
    def __init__(self, type, iteration=None, metric=None, model_file=None):
        self.type, self.iteration, self.metric, self.model_file = type, iteration, metric, model_file


PipelineDataset = _cloud_only("PipelineDataset", "Azure's pipeline dataset binding",
                              "Pass the dataset itself, or ds.as_named_input(name), as a step input.")
OutputPortBinding = _cloud_only("OutputPortBinding", "Azure's low-level graph API", "Use PipelineData instead.")


def get_run(experiment, run_id, rehydrate=True, clean_up=True):
    return Run.get(experiment.workspace, run_id)


# -- datastores for cloud storage ---------------------------------------------------------------------------
class Datastore(_Datastore):
    """Azure's Datastore; cloud storage registers a local folder of the same name."""

    @staticmethod
    def _local_for(workspace, name, what):
        folder = workspace.folder / "datastores" / name
        if name not in workspace.datastores:
            _Datastore.register_local(workspace, name, folder)
        say_once(f"datastore-{name}", f"datastore '{name}' ({what}) is the folder {folder} on this machine; "
                                      "nothing is fetched from Azure.")
        return Datastore(workspace, name)

    @staticmethod
    def register_azure_blob_container(workspace, datastore_name, container_name, account_name, sas_token=None,
                                      account_key=None, protocol=None, endpoint=None, overwrite=False,
                                      create_if_not_exists=False, skip_validation=False, blob_cache_timeout=None,
                                      grant_workspace_access=False, subscription_id=None, resource_group=None):
        return Datastore._local_for(workspace, datastore_name, f"blob container {account_name}/{container_name}")

    @staticmethod
    def register_azure_file_share(workspace, datastore_name, file_share_name, account_name, sas_token=None,
                                  account_key=None, protocol=None, endpoint=None, overwrite=False,
                                  create_if_not_exists=False, skip_validation=False):
        return Datastore._local_for(workspace, datastore_name, f"file share {account_name}/{file_share_name}")

    @staticmethod
    def register_azure_data_lake_gen2(workspace, datastore_name, filesystem, account_name, tenant_id=None,
                                      client_id=None, client_secret=None, resource_url=None, authority_url=None,
                                      protocol=None, endpoint=None, overwrite=False, **kwargs):
        return Datastore._local_for(workspace, datastore_name, f"data lake {account_name}/{filesystem}")


# -- authentication ----------------------------------------------------------------------------------------
def _server_token() -> str | None:
    """The token the workspace's server wrote (``.mlpipe/server.token``) for the workspace at or above the
    current directory, if there is one."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / _workspace.WORKSPACE_DIR / "config.json").is_file():
            try:
                return (folder / _workspace.WORKSPACE_DIR / "server.token").read_text().strip() or None
            except OSError:
                return None
    return None


class AbstractAuthentication:
    """Azure's credentials: here, the header the workspace's REST server accepts."""

    def __init__(self, *args, **kwargs):
        pass

    def get_authentication_header(self) -> dict:
        token = _server_token() or os.environ.get("JUPYTER_TOKEN") or os.environ.get("MLPIPE_TOKEN")
        if not token:
            say_once("auth", "no server token is known yet (no .mlpipe/server.token, no JUPYTER_TOKEN); "
                             "the authentication header is empty.")
            return {}
        return {"Authorization": f"token {token}"}

    def get_token(self, *scopes, **kwargs):
        return self.get_authentication_header().get("Authorization", "").partition(" ")[2]


class InteractiveLoginAuthentication(AbstractAuthentication):
    pass


class AzureCliAuthentication(AbstractAuthentication):
    pass


class ServicePrincipalAuthentication(AbstractAuthentication):
    pass


class MsiAuthentication(AbstractAuthentication):
    pass


class TokenAuthentication(AbstractAuthentication):
    pass
