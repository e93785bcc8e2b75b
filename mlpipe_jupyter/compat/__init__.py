"""The ``azureml`` import paths of Azure ML SDK v1, backed by this package.

The modules live under ``compat/root/azureml/``; ``root`` is a plain folder (no package), so putting it
on ``sys.path`` makes ``import azureml.core`` find them. Step scripts get it on their ``PYTHONPATH`` from
the runner, with nothing to enable; a driver (a notebook, a script) enables it with one call:
``%load_ext mlpipe_jupyter`` or ``mlpipe python script.py``. A real azureml-core installation is never
shadowed: ``enable`` then leaves it alone and says so once.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys

from mlpipe_jupyter.running.contract import AZUREML_IMPORT_ROOT

IMPORT_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), AZUREML_IMPORT_ROOT)
_said: set[str] = set()


def say_once(key: str, text: str) -> None:
    """One notice per process on stderr: a notebook runs top to bottom without a wall of repeats."""
    if key not in _said:
        _said.add(key)
        print(f"mlpipe-jupyter: {text}", file=sys.stderr, flush=True)


def real_sdk_locations(path=None) -> list[str]:
    """The folders of an installed Azure ML SDK (an ``azureml`` package with ``core`` in it), ours left out."""
    entries = [p for p in (sys.path if path is None else path) if os.path.abspath(p or os.curdir) != IMPORT_ROOT]
    spec = importlib.machinery.PathFinder.find_spec("azureml", entries)
    if spec is None:
        return []
    return [loc for loc in (spec.submodule_search_locations or []) if os.path.isdir(os.path.join(loc, "core"))]


def enable() -> bool:
    """Make ``import azureml...`` use this package; False (and one notice) when the real SDK is installed."""
    if IMPORT_ROOT in sys.path:
        return True
    real = real_sdk_locations()
    if real:
        say_once("real-sdk", f"the Azure ML SDK is installed ({real[0]}); the azureml compatibility layer "
                             "steps aside and `import azureml` uses it.")
        return False
    sys.path.append(IMPORT_ROOT)  # last: anything the user put on the path first keeps its place
    importlib.invalidate_caches()
    return True


def enabled() -> bool:
    return IMPORT_ROOT in sys.path
