"""``azureml.pipeline.core.pipeline_draft`` of Azure ML SDK v1, backed by mlpipe-jupyter (names in mlpipe_jupyter/compat/exports.py)."""
from mlpipe_jupyter.compat.exports import module_attributes

__getattr__, __dir__, __all__ = module_attributes(__name__)
