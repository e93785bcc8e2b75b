"""Compute backends by kind. Each backend is one module implementing running/protocol.py."""
from __future__ import annotations

from ..errors import UserError


def backends_for(workspace, plan) -> dict:
    """One backend object per compute target the plan uses."""
    targets = workspace.compute_targets
    out = {}
    for sp in plan.steps.values():
        name = sp.compute_target
        if name in out:
            continue
        kind = targets[name]["kind"]
        if kind == "local":
            from .local import LocalCompute

            out[name] = LocalCompute(workspace)
        else:
            raise UserError(f"Step '{sp.name}': compute target '{name}' of kind '{kind}' is not supported here.")
    return out
