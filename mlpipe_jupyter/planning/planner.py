"""The planner: from a pipeline to a plan the runner can execute, with everything checked first.

Planning validates the pipeline, resolves parameter values, snapshots each source directory once
and fingerprints external data, so bad input fails here, before any step starts. The reuse decision
of a step that depends on another step's fresh output is taken by ``reuse.decide`` when that output
exists; every decision carries its reason.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlpipe_jupyter.sdk.data import (AbstractDataset, DataReference, DatasetConsumptionConfig, InputBinding,
                         OutputFileDatasetConfig, PipelineData)
from mlpipe_jupyter.sdk.environment import Environment
from mlpipe_jupyter.sdk.parameters import PipelineParameter
from mlpipe_jupyter.errors import PipelineValidationError, UserError
from mlpipe_jupyter.secrets import MASK, looks_secret, unmask
from mlpipe_jupyter.planning.fingerprint import path_fingerprint
from mlpipe_jupyter.data.inputs import ExternalInput, resolve_external
from mlpipe_jupyter.planning.snapshot import Snapshot, take_snapshot
from mlpipe_jupyter.planning.validation import topological_order


@dataclass(frozen=True)
class Ref:
    """A placeholder in arguments or environment for a path known only on the compute target."""

    kind: str  # "input" or "output"
    name: str


@dataclass
class InputPlan:
    name: str
    mode: str
    upstream: str | None = None  # producing step
    output: str | None = None  # output name on the producer
    external: ExternalInput | None = None


@dataclass
class OutputPlan:
    name: str
    is_directory: bool = True
    destination: tuple | None = None  # (Datastore, path template)
    register_as: str | None = None


@dataclass
class StepPlan:
    name: str
    script: str
    snapshot: Snapshot
    arguments: list  # str or Ref
    env_vars: dict  # str or Ref values
    parameters: dict  # pipeline parameter values this step uses
    inputs: list[InputPlan]
    outputs: list[OutputPlan]
    compute_target: str
    environment: Environment
    allow_reuse: bool
    timeout: float | None
    upstream: list[str]
    hash_paths: dict = field(default_factory=dict)
    argument_template: list = field(default_factory=list)  # parameters by name, so a value change reads as one
    compute_identity: dict = field(default_factory=dict)  # what of the target can change a result
    # keyed fingerprints of secret values, by ("env" | "param" | "environment", name): in the manifest
    # instead of the values, so reuse notices a changed secret and the store never holds one
    secret_fingerprints: dict = field(default_factory=dict)

    def manifest(self, input_fingerprints: dict[str, str]) -> dict:
        """Everything that can change this step's result (see planning/reuse.py)."""
        secret = self.secret_fingerprints
        manifest = {
            "snapshot": self.snapshot.digest,
            "script": self.script,
            "arguments": [a if isinstance(a, str) else f"<{a.kind}:{a.name}>" for a in self.argument_template],
            "parameters": {k: secret.get(("param", k), v) for k, v in self.parameters.items()},
            "env_vars": {k: secret.get(("env", k), v if isinstance(v, str) else f"<{v.kind}:{v.name}>")
                         for k, v in self.env_vars.items() if not k.startswith("AZUREML_DATAREFERENCE_")},
            "inputs": {k: input_fingerprints[k] for k in sorted(input_fingerprints)},
            "outputs": sorted(o.name if o.is_directory else f"{o.name} (file)" for o in self.outputs),
            "hash_paths": self.hash_paths,
            "environment": self.environment.content_hash,
            "compute": self.compute_identity,
        }
        environment_secrets = {n: fp for (kind, n), fp in secret.items() if kind == "environment"}
        if environment_secrets:  # their values are not in the environment's hash
            manifest["environment_secrets"] = environment_secrets
        return manifest

    def secret_values(self) -> list[str]:
        """The values of this step's secrets, to keep them out of its log."""
        values = [v for k, v in self.env_vars.items() if isinstance(v, str) and looks_secret(k)]
        values += [v for k, v in self.environment.environment_variables.items() if looks_secret(k)]
        values += [str(v) for k, v in self.parameters.items() if looks_secret(k)]
        return [v for v in values if isinstance(v, str)]


@dataclass
class Plan:
    steps: dict[str, StepPlan]  # in a topological order
    downstream: dict[str, list[str]]
    parameters: dict
    description: str | None = None

    def descendants(self, name: str) -> list[str]:
        seen, todo = [], list(self.downstream.get(name, []))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.append(n)
                todo += self.downstream.get(n, [])
        return seen


def _render(value, params: dict, used: dict, step_name: str):
    """An argument as the script sees it: parameter values inline, data as a path placeholder."""
    if isinstance(value, PipelineParameter):
        used[value.name] = params[value.name]
        return str(params[value.name])
    if isinstance(value, InputBinding):
        return Ref("input", value.input_name)
    if isinstance(value, DatasetConsumptionConfig):
        return Ref("input", value.name)
    if isinstance(value, DataReference):
        return Ref("input", value.data_reference_name)
    if isinstance(value, PipelineData):
        return value  # decided by the caller: an output or an input of this step
    if isinstance(value, AbstractDataset):
        return Ref("input", value.name or "dataset")
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    raise UserError(f"Step '{step_name}': argument {value!r} is not a string, number, parameter or data object.")


def compute_identity(target: dict) -> dict:
    """The part of a compute target that can change a step's result: its kind and the image or
    environment it gives steps that name none (not its name, limits or concurrency)."""
    config = target.get("config") or {}
    identity = {"kind": target["kind"]}
    for key in ("image", "environment"):
        if config.get(key):
            identity[key] = config[key]
    return identity


def _secret_fingerprints(store, env_vars: dict, parameters: dict, environment: Environment) -> dict:
    out = {}
    for kind, values in (("env", env_vars), ("param", parameters), ("environment", environment.environment_variables)):
        for name, value in values.items():
            if looks_secret(name) and isinstance(value, (str, int, float)) and value != MASK:
                out[(kind, name)] = store.secret_digest(value)
    return out


def make_plan(pipeline, pipeline_parameters: dict | None = None) -> Plan:
    workspace = pipeline.workspace
    store = workspace._store
    pipeline.validate(raise_on_error=True)
    declared = pipeline.parameters()
    overrides = dict(pipeline_parameters or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise PipelineValidationError([f"Parameter '{n}' was given at submit, but no step uses a PipelineParameter "
                                       f"named '{n}' (known: {', '.join(sorted(declared)) or 'none'})." for n in unknown])
    params = {n: overrides.get(n, p.default_value) for n, p in declared.items()}
    problems = []
    for n, value in params.items():  # a secret-looking parameter saved with a pipeline was stored masked
        try:
            params[n] = unmask(n, value, f"Pipeline parameter '{n}'") if looks_secret(n) else value
        except ValueError as e:
            problems.append(str(e))

    targets = workspace.compute_targets
    snapshots: dict[str, Snapshot] = {}
    for s in pipeline.steps:
        if s.source_directory not in snapshots:
            snapshots[s.source_directory] = take_snapshot(store, Path(s.source_directory))

    producers = pipeline.producers()
    step_plans: dict[str, StepPlan] = {}
    for s in pipeline.steps:
        used: dict = {}
        output_names = {o.name for o in s.outputs}
        inputs = []
        for input_name, data, mode in s.input_items():
            if isinstance(data, PipelineData):
                prod = producers[id(data)]
                inputs.append(InputPlan(input_name, mode, upstream=prod.name, output=data.name))
            else:
                try:
                    ext = resolve_external(workspace, data, f"Step '{s.name}' input '{input_name}'")
                except UserError as e:
                    problems.append(str(e))
                    continue
                inputs.append(InputPlan(input_name, mode, external=ext))
        input_by_data = {}
        for item in s.inputs:
            if isinstance(item, PipelineData):
                input_by_data[id(item)] = item.name

        def data_ref(data):  # a data object in arguments or params: this step's output, or one of its inputs
            if data.name in output_names:
                return Ref("output", data.name)
            return Ref("input", input_by_data.get(id(data), data.name))

        arguments, template = [], []
        for a in s.arguments:
            r = _render(a, params, used, s.name)
            if isinstance(r, PipelineData):
                r = data_ref(r)
            arguments.append(r)
            template.append(f"<param:{a.name}>" if isinstance(a, PipelineParameter) else r)
        env_vars = {}
        for k, v in s.params.items():
            r = _render(v, params, used, s.name)
            env_vars[f"AML_PARAMETER_{k}"] = data_ref(r) if isinstance(r, PipelineData) else r
        for p in s.parameters_used():
            env_vars.setdefault(f"AML_PARAMETER_{p.name}", str(params[p.name]))
            used[p.name] = params[p.name]
        for k, v in (getattr(s.runconfig, "environment_variables", None) or {}).items():
            try:  # RunConfiguration.environment_variables, as in Azure ML
                env_vars.setdefault(str(k), unmask(str(k), str(v), f"Step '{s.name}'"))
            except ValueError as e:
                problems.append(str(e))
        try:
            environment = (s.runconfig.environment or Environment("user-managed")).with_secrets(
                workspace, f"Step '{s.name}'")
        except UserError as e:
            problems.append(str(e))
            environment = s.runconfig.environment or Environment("user-managed")
        for inp in inputs:
            env_vars[f"AZUREML_DATAREFERENCE_{inp.name}"] = Ref("input", inp.name)
        outputs = []
        for o in s.outputs:
            env_vars[f"AZUREML_DATAREFERENCE_{o.name}"] = Ref("output", o.name)
            dest = o.destination if isinstance(o, OutputFileDatasetConfig) else None
            reg = o._register_as if isinstance(o, OutputFileDatasetConfig) else None
            outputs.append(OutputPlan(o.name, o.is_directory, dest, reg))
        hash_paths = {hp: path_fingerprint(store, Path(s.source_directory) / hp) for hp in s.hash_paths}
        step_plans[s.name] = StepPlan(
            name=s.name, script=s.script_name, snapshot=snapshots[s.source_directory], arguments=arguments,
            env_vars=env_vars, parameters=used, inputs=inputs, outputs=outputs, compute_target=s.compute_target,
            environment=environment, allow_reuse=s.allow_reuse,
            timeout=s.runconfig.max_run_duration_seconds, upstream=[u.name for u in pipeline.upstream(s, producers)],
            hash_paths=hash_paths, argument_template=template,
            compute_identity=compute_identity(targets[s.compute_target]),
            secret_fingerprints=_secret_fingerprints(store, env_vars, used, environment),
        )
    if problems:
        raise PipelineValidationError(problems)

    names = [s.name for s in pipeline.steps]
    downstream = {n: [] for n in names}
    for sp in step_plans.values():
        for u in sp.upstream:
            downstream[u].append(sp.name)
    order = topological_order(names, downstream)
    return Plan({n: step_plans[n] for n in order}, downstream, params, pipeline.description)


def script_plan(workspace, config) -> Plan:
    """A one-step plan for ``Experiment.submit(ScriptRunConfig(...))``."""
    from mlpipe_jupyter.sdk.pipeline import Pipeline
    from mlpipe_jupyter.sdk.step import PythonScriptStep

    if not config.script:
        raise UserError("ScriptRunConfig needs a script.")
    base = os.path.splitext(os.path.basename(config.script))[0]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", base).lstrip(".-") or "script"  # any file name makes a run name
    step = PythonScriptStep(config.script, name=name,
                            arguments=config.arguments, compute_target=config.compute_target,
                            runconfig=config.run_config, source_directory=config.source_directory, allow_reuse=False)
    return make_plan(Pipeline(workspace, [step]))
