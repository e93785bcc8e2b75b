"""Steps: ``PipelineStep`` (what every step has: a name, an order), ``PythonScriptStep`` (one script with its
data links, arguments and parameters) and ``StepSequence`` (steps that run one after another)."""
from __future__ import annotations

import os
import re

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_step_name, fit_data_name
from mlpipe_jupyter.sdk.compute import target_name
from mlpipe_jupyter.sdk.data import (AbstractDataset, DataReference, DatasetConsumptionConfig, InputBinding,
                                     OutputFileDatasetConfig, ParameterInput, PipelineData, bind_step_data)
from mlpipe_jupyter.sdk.parameters import PipelineParameter
from mlpipe_jupyter.sdk.run_config import RunConfiguration


class PipelineStep:
    """The base of every step, as in Azure: a name and the steps it must run after (``run_after``)."""

    def __init__(self, name):
        # the name becomes part of file names, so it is checked before anything else uses it
        self.name = check_step_name(name)
        self._run_after: list[PipelineStep] = []

    def run_after(self, step) -> None:
        """Run this step only after ``step`` completed: an ordering with no data, which does not affect reuse."""
        if not isinstance(step, PipelineStep):
            raise UserError(f"Step '{self.name}': run_after needs a step, not {step!r}.")
        if step is self:
            raise UserError(f"Step '{self.name}' cannot run after itself.")
        if not any(step is s for s in self._run_after):
            self._run_after.append(step)


class StepSequence:
    """Steps that run in the given order: ``StepSequence(steps=[a, b, c])``.

    An item may be a list of steps (they run side by side, all after the item before) or another
    StepSequence. The order is kept by the pipeline built from the sequence, not by the steps, so the
    same steps can appear in other pipelines unordered."""

    def __init__(self, steps=None):
        self._items = list(steps or [])
        if not self._items:
            raise UserError("StepSequence needs a list of steps.")

    def groups(self) -> list[list]:
        """The steps of each item, in order (a nested sequence contributes its own groups)."""
        out = []
        for item in self._items:
            if isinstance(item, StepSequence):
                out += item.groups()
            elif isinstance(item, (list, tuple)):
                out.append(list(_flatten(item)))
            else:
                out.append([item])
        return out

    def edges(self) -> list[tuple]:
        """(step, step it runs after) for each consecutive pair of items."""
        groups = self.groups()
        return [(later, earlier) for before, after in zip(groups, groups[1:]) for later in after for earlier in before]

    def steps(self) -> list:
        return [s for group in self.groups() for s in group]


def _flatten(items):
    for item in items:
        if isinstance(item, StepSequence):
            yield from item.steps()
        elif isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


class PythonScriptStep(PipelineStep):
    """Runs ``script_name`` from ``source_directory``; data objects in ``arguments`` become paths.

    Without a ``name`` the step is named after its script file (``train.py``), as in Azure."""

    def __init__(self, script_name, name=None, arguments=None, compute_target=None, runconfig=None,
                 runconfig_pipeline_params=None, inputs=None, outputs=None, params=None,
                 source_directory=None, allow_reuse=True, version=None, hash_paths=None):
        if not script_name or not isinstance(script_name, str):
            raise UserError(f"PythonScriptStep needs a script_name (got {script_name!r}).")
        super().__init__(name or os.path.basename(script_name.replace("\\", "/")))
        self._auto_named = name is None  # a pipeline tells two unnamed steps of one script apart
        self._default_name = self.name
        self.script_name = script_name
        self.source_directory = os.path.abspath(source_directory or os.path.dirname(script_name) or ".")
        if source_directory is None and os.path.dirname(script_name):
            self.script_name = os.path.basename(script_name)
        # Azure's (DataPath or its parameter, DataPathComputeBinding) tuples become input objects
        self.arguments, self.inputs = bind_step_data(arguments or [], inputs or [])
        # ``pd.as_dataset()`` listed as an output is the data itself
        self.outputs = [o.data if isinstance(o, InputBinding) else o for o in outputs or []]
        self.params = dict(params or {})
        self.runconfig = runconfig or RunConfiguration()
        self.compute_target = target_name(compute_target if compute_target is not None else self.runconfig.target)
        self.allow_reuse = allow_reuse
        self.version = version
        self.hash_paths = list(hash_paths or [])
        self.position = None  # designer layout, saved with the pipeline
        listed = [*self.outputs, *self.inputs, *(getattr(i, "data", None) for i in self.inputs)]
        for arg in self.arguments:  # as in Azure, an OutputFileDatasetConfig in the arguments is an output...
            if isinstance(arg, OutputFileDatasetConfig) and not any(arg is x for x in listed):
                # ...unless another step writes it: then this step reads it (``out.as_mount()`` on a consumer)
                (self.inputs if self._written_elsewhere(arg) else self.outputs).append(arg)
                listed.append(arg)
        # unnamed outputs are named after the step, so rebuilding the same pipeline reuses them
        self._auto_outputs = [o for o in self.outputs if getattr(o, "_auto_named", False)]
        for out in self._auto_outputs:
            out._auto_named = False
        self._name_outputs()
        for out in self.outputs:
            if not isinstance(out, PipelineData):
                raise UserError(f"Step '{self.name}': output {out!r} is not PipelineData or OutputFileDatasetConfig.")
            # the last step built with it writes it, as in Azure: a notebook cell that rebuilds its steps
            # replaces the producer; two steps of one pipeline writing it is the pipeline's error
            out._producer = self
        for arg in self.arguments:  # data used only in arguments counts as an input, as in Azure
            if isinstance(arg, InputBinding) and any(arg.data is o for o in self.outputs):
                continue  # ``pd.as_dataset()`` in its writer's arguments: the output's path
            if isinstance(arg, (DataReference, InputBinding, DatasetConsumptionConfig, ParameterInput)) \
                    and arg not in self.inputs:
                self.inputs.append(arg)
            elif isinstance(arg, PipelineData) and arg not in self.outputs and arg not in self.inputs:
                self.inputs.append(arg)

    def _name_outputs(self) -> None:
        for i, out in enumerate(self._auto_outputs):
            base = re.sub(r"[^A-Za-z0-9_]+", "_", self.name).strip("_") or "step"
            base = fit_data_name(base if not base[0].isdigit() else "_" + base, room=len("_output_9999"))
            out.name = out.output_name = f"{base}_output" + (f"_{i + 1}" if len(self._auto_outputs) > 1 else "")

    def _rename(self, name) -> None:
        """A new name (a pipeline telling unnamed steps apart), and outputs named after it renamed too."""
        self.name = check_step_name(name)
        self._name_outputs()

    def _written_elsewhere(self, data) -> bool:
        """Whether another step writes ``data``: its producer, unless that is an earlier build of this step."""
        producer = data._producer
        return producer is not None and producer is not self and producer.name != self.name

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
            elif isinstance(item, ParameterInput):
                out.append((item.name, item, item.mode))
            else:
                if isinstance(item, AbstractDataset):
                    out.append((item.name or "dataset", item, "mount"))
                else:
                    raise UserError(f"Step '{self.name}': input {item!r} is not a data object.")
        return out

    def parameters_used(self) -> list[PipelineParameter]:
        found = [a for a in self.arguments if isinstance(a, PipelineParameter)]
        found += [v for v in self.params.values() if isinstance(v, PipelineParameter)]
        found += [i.param for i in self.inputs if isinstance(i, ParameterInput)]  # data chosen at submit
        return found

    def __repr__(self):
        return f"PythonScriptStep(name={self.name!r}, script_name={self.script_name!r})"
