"""Distributed training settings with Azure ML SDK v1's names and defaults (azureml.core.runconfig):
``ScriptRunConfig(distributed_job_config=...)`` puts one on its run configuration, as Azure does, and a
``PythonScriptStep`` given that run configuration runs distributed too. The step's document then says
how many processes to start on how many nodes (see compute/launch_ranks.py)."""
from __future__ import annotations

import warnings

from mlpipe_jupyter.errors import UserError

__all__ = ["MpiConfiguration", "PyTorchConfiguration", "TensorflowConfiguration"]


class MpiConfiguration:
    """MPI-style: ``process_count_per_node`` processes on each of ``node_count`` nodes."""

    def __init__(self, process_count_per_node=1, node_count=1):
        self.process_count_per_node = process_count_per_node
        self.node_count = node_count


class PyTorchConfiguration:
    """``torch.distributed``: ``process_count`` processes in all (Azure's default: one per node), spread
    evenly over ``node_count`` nodes."""

    def __init__(self, communication_backend="Nccl", process_count=None, node_count=1):
        self.communication_backend = communication_backend
        self.process_count = process_count
        self.node_count = node_count


class TensorflowConfiguration:
    """Parameter-server TensorFlow: kept; such a run starts one process here."""

    def __init__(self, worker_count=1, parameter_server_count=1):
        self.worker_count = worker_count
        self.parameter_server_count = parameter_server_count


def _count(value, what: str, config) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{type(config).__name__}: {what} must be a whole number of at least 1 (got {value!r}).")
    return value


def apply(run_config, config) -> None:
    """What Azure's ScriptRunConfig does with ``distributed_job_config``: the run configuration's
    framework, communicator, node count and the settings object of that kind."""
    if isinstance(config, PyTorchConfiguration):
        run_config.framework, run_config.communicator = "PyTorch", "Nccl"
        run_config.pytorch = config
    elif isinstance(config, MpiConfiguration):
        run_config.framework, run_config.communicator = "Python", "IntelMpi"
        run_config.mpi = config
    elif isinstance(config, TensorflowConfiguration):
        run_config.framework, run_config.communicator = "TensorFlow", "ParameterServer"
        run_config.tensorflow = config
        warnings.warn("TensorflowConfiguration: parameter-server training is not started here; the run is one "
                      "process.", stacklevel=3)
    else:
        raise UserError(f"distributed_job_config must be a PyTorchConfiguration, MpiConfiguration or "
                        f"TensorflowConfiguration, not {type(config).__name__}.")
    run_config.node_count = getattr(config, "node_count", 1)


def from_entry(entry: dict):
    """The settings object a document's ``distributed`` entry was made from."""
    per_node, nodes = int(entry["process_count_per_node"]), int(entry.get("node_count", 1))
    if entry["kind"] == "pytorch":
        return PyTorchConfiguration(entry.get("backend", "Nccl"), per_node * nodes, nodes)
    return MpiConfiguration(per_node, nodes)


def _nodes(run_config, config):
    """The settings object's node count, or the run configuration's (Azure's older way to say it)."""
    return config.node_count if config.node_count != 1 else getattr(run_config, "node_count", 1)


def document_entry(run_config) -> dict | None:
    """The step document's ``distributed`` entry for a run configuration, or None for one process."""
    communicator = str(getattr(run_config, "communicator", None) or "None").lower()
    framework = str(getattr(run_config, "framework", None) or "Python").lower()
    pytorch = getattr(run_config, "pytorch", None)
    if framework == "pytorch" and pytorch is not None and communicator in ("nccl", "gloo", "none"):
        nodes = _count(_nodes(run_config, pytorch), "node_count", pytorch)
        total = _count(pytorch.process_count if pytorch.process_count is not None else nodes, "process_count", pytorch)
        if total % nodes:
            raise UserError(f"PyTorchConfiguration(process_count={total}, node_count={nodes}): the processes must "
                            "divide evenly among the nodes.")
        if total == 1:
            return None
        return {"kind": "pytorch", "process_count_per_node": total // nodes, "node_count": nodes,
                "backend": str(pytorch.communication_backend)}
    if communicator in ("intelmpi", "openmpi", "mpi"):
        mpi = getattr(run_config, "mpi", None) or MpiConfiguration()
        nodes = _count(_nodes(run_config, mpi), "node_count", mpi)
        per_node = _count(mpi.process_count_per_node, "process_count_per_node", mpi)
        if per_node * nodes == 1:
            return None
        return {"kind": "mpi", "process_count_per_node": per_node, "node_count": nodes}
    return None
