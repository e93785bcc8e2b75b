"""``azureml``: Azure ML SDK v1's import paths, backed by mlpipe-jupyter.

When the real SDK (azureml-core) is installed as well, this package steps aside: its search path
becomes the real one, so ``import azureml.core`` is the real SDK, and it says so once.
"""
from mlpipe_jupyter.compat import real_sdk_locations, say_once

_real = real_sdk_locations()
if _real:
    __path__[:] = _real  # noqa: F821 - the package's own search path: only the real SDK's folders
    say_once("real-sdk", f"the Azure ML SDK is installed ({_real[0]}); the azureml compatibility layer "
                         "steps aside and `import azureml` uses it.")
