"""PythonScriptStep: one script with its data links, arguments and parameters."""
from __future__ import annotations

import os
import re

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_step_name, fit_data_name
from mlpipe_jupyter.sdk.compute import target_name
from mlpipe_jupyter.sdk.data import (AbstractDataset, DataReference, DatasetConsumptionConfig, InputBinding,
                                     OutputFileDatasetConfig, PipelineData)
from mlpipe_jupyter.sdk.parameters import PipelineParameter
from mlpipe_jupyter.sdk.run_config import RunConfiguration


class PythonScriptStep:
    """Runs ``script_name`` from ``source_directory``; data objects in ``arguments`` become paths."""

    def __init__(self, script_name, name=None, arguments=None, compute_target=None, runconfig=None,
                 runconfig_pipeline_params=None, inputs=None, outputs=None, params=None,
                 source_directory=None, allow_reuse=True, version=None, hash_paths=None):
        if not script_name or not isinstance(script_name, str):
            raise UserError(f"PythonScriptStep needs a script_name (got {script_name!r}).")
        # the name becomes part of file names, so it is checked before anything else uses it
        self.name = check_step_name(name or os.path.splitext(os.path.basename(script_name))[0])
        self.script_name = script_name
        self.source_directory = os.path.abspath(source_directory or os.path.dirname(script_name) or ".")
        if source_directory is None and os.path.dirname(script_name):
            self.script_name = os.path.basename(script_name)
        self.arguments = list(arguments or [])
        self.inputs = list(inputs or [])
        self.outputs = list(outputs or [])
        self.params = dict(params or {})
        self.compute_target = target_name(compute_target)
        self.runconfig = runconfig or RunConfiguration()
        self.allow_reuse = allow_reuse
        self.version = version
        self.hash_paths = list(hash_paths or [])
        self.position = None  # designer layout, saved with the pipeline
        listed = [*self.outputs, *self.inputs, *(getattr(i, "data", None) for i in self.inputs)]
        for arg in self.arguments:  # as in Azure, an OutputFileDatasetConfig in the arguments is an output
            if isinstance(arg, OutputFileDatasetConfig) and not any(arg is x for x in listed):
                self.outputs.append(arg)
                listed.append(arg)
        unnamed = [o for o in self.outputs if getattr(o, "_auto_named", False)]
        for i, out in enumerate(unnamed):
            base = re.sub(r"\W", "_", self.name)
            base = fit_data_name(base if not base[0].isdigit() else "_" + base, room=len("_output_9999"))
            out.name = out.output_name = f"{base}_output" + (f"_{i + 1}" if len(unnamed) > 1 else "")
            out._auto_named = False
        for out in self.outputs:
            if not isinstance(out, PipelineData):
                raise UserError(f"Step '{self.name}': output {out!r} is not PipelineData or OutputFileDatasetConfig.")
            if out._producer is not None and out._producer is not self:
                out._other_producers = getattr(out, "_other_producers", []) + [self]
            else:
                out._producer = self
        for arg in self.arguments:  # data used only in arguments counts as an input, as in Azure
            if isinstance(arg, (DataReference, InputBinding, DatasetConsumptionConfig)) and arg not in self.inputs:
                self.inputs.append(arg)
            elif isinstance(arg, PipelineData) and arg not in self.outputs and arg not in self.inputs:
                self.inputs.append(arg)

    # -- graph helpers ----------------------------------------------------------------------------
    def input_items(self):
        """(input name, data object, mode) for each input."""
        out = []
        for item in self.inputs:
            if isinstance(item, InputBinding):
                out.append((item.input_name, item.data, item.mode))
            elif isinstance(item, PipelineData):
                out.append((item.name, item, "mount"))
            elif isinstance(item, DataReference):
                out.append((item.data_reference_name, item, item.mode))
            elif isinstance(item, DatasetConsumptionConfig):
                out.append((item.name, item.dataset, item.mode))
            else:
                if isinstance(item, AbstractDataset):
                    out.append((item.name or "dataset", item, "mount"))
                else:
                    raise UserError(f"Step '{self.name}': input {item!r} is not a data object.")
        return out

    def parameters_used(self) -> list[PipelineParameter]:
        found = [a for a in self.arguments if isinstance(a, PipelineParameter)]
        found += [v for v in self.params.values() if isinstance(v, PipelineParameter)]
        return found

    def __repr__(self):
        return f"PythonScriptStep(name={self.name!r}, script_name={self.script_name!r})"
