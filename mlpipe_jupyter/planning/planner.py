"""The planner: from a pipeline document to a plan the runner can execute, with everything checked first.

Planning validates the document (model/validation.py, then what needs this machine: scripts, source
folders, compute targets), resolves parameter values, snapshots each source directory once and
fingerprints external data, so bad input fails here, before any step starts. The reuse decision of
a step that depends on another step's fresh output is taken by ``reuse.decide`` when that output
exists; every decision carries its reason. ``workspace`` is anything with the workspace's store,
folder, path and compute targets.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlpipe_jupyter.data.datastore import Datastore
from mlpipe_jupyter.data.fingerprint import path_fingerprint
from mlpipe_jupyter.data.inputs import ExternalInput, resolve_external
from mlpipe_jupyter.errors import PipelineValidationError, UserError
from mlpipe_jupyter.model import graph, validation
from mlpipe_jupyter.model.document import (PipelineDocument, data_ref, input_items, input_name_for,
                                           is_directory, output_names)
from mlpipe_jupyter.model.environment import EnvironmentDefinition, default_environment
from mlpipe_jupyter.planning.reuse import START_SETTING
from mlpipe_jupyter.planning.snapshot import Snapshot, take_snapshot
from mlpipe_jupyter.secrets import MASK, looks_secret, unmask


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
    # how the script sees it in ``run.input_datasets`` ("file" or "tabular"), None: not there
    dataset_kind: str | None = None
    dataset_options: dict = field(default_factory=dict)


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
    environment: EnvironmentDefinition
    allow_reuse: bool
    timeout: float | None
    upstream: list[str]
    hash_paths: dict = field(default_factory=dict)
    argument_template: list = field(default_factory=list)  # parameters by name, so a value change reads as one
    compute_identity: dict = field(default_factory=dict)  # what of the target can change a result
    # keyed fingerprints of secret values, by ("env" | "param" | "environment", name): in the manifest
    # instead of the values, so reuse notices a changed secret and the store never holds one
    secret_fingerprints: dict = field(default_factory=dict)
    distributed: dict | None = None  # processes per node and nodes (model/document.py), None for one process

    def manifest(self, input_fingerprints: dict[str, str]) -> dict:
        """Everything that can change this step's result (see planning/reuse.py)."""
        secret = self.secret_fingerprints
        manifest = {
            "snapshot": self.snapshot.digest,
            "script": self.script,
            "arguments": [a if isinstance(a, str) else f"<{a.kind}:{a.name}>" for a in self.argument_template],
            "parameters": {k: secret.get(("param", k), v) for k, v in self.parameters.items()},
            "env_vars": {k: secret.get(("env", k), v if isinstance(v, str) else f"<{v.kind}:{v.name}>")
                         for k, v in self.env_vars.items()
                         if not k.startswith("AZUREML_DATAREFERENCE_") and k != START_SETTING},
            "inputs": {k: input_fingerprints[k] for k in sorted(input_fingerprints)},
            "outputs": sorted(o.name if o.is_directory else f"{o.name} (file)" for o in self.outputs),
            "hash_paths": self.hash_paths,
            "environment": self.environment.content_hash,
            "compute": self.compute_identity,
        }
        interpreter = self.environment.interpreter_identity()
        if interpreter is not None:  # so a miss can say which interpreter it was
            manifest["interpreter"] = interpreter
        if self.distributed:  # the number of processes can change what training produces
            manifest["distributed"] = self.distributed
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


def _secret_fingerprints(store, env_vars: dict, parameters: dict, environment: EnvironmentDefinition) -> dict:
    out = {}
    for kind, values in (("env", env_vars), ("param", parameters), ("environment", environment.environment_variables)):
        for name, value in values.items():
            if looks_secret(name) and isinstance(value, (str, int, float)) and value != MASK:
                out[(kind, name)] = store.secret_digest(value)
    return out


def _distributed(entry: dict | None) -> dict | None:
    """The entry with its defaults filled in, so two ways of writing one setting share a reuse key."""
    if not entry:
        return None
    spread = {"kind": entry["kind"], "process_count_per_node": int(entry.get("process_count_per_node", 1)),
              "node_count": int(entry.get("node_count", 1))}
    if entry["kind"] == "pytorch":
        spread["backend"] = str(entry.get("backend", "Nccl"))
    return spread


def workspace_problems(doc: PipelineDocument, targets: dict) -> list[str]:
    """What the document asks of this machine and workspace: source folders and scripts that exist,
    hash paths, and compute targets the workspace has."""
    found = []
    for s in doc.get("steps") or []:
        name, folder, script = s.get("name"), s.get("source_directory") or ".", s.get("script") or ""
        if not validation.is_relative_script(script):
            pass  # the document's own problem, said by model/validation.py
        elif not os.path.isdir(folder):
            found.append(f"Step '{name}': source directory '{folder}' does not exist.")
        elif not os.path.isfile(os.path.join(folder, script)):
            found.append(f"Step '{name}': script '{script}' not found in '{folder}'.")
        for hp in s.get("hash_paths") or []:
            if not os.path.exists(os.path.join(folder, hp)):
                found.append(f"Step '{name}': hash path '{hp}' not found in '{folder}'.")
    for s in doc.get("steps") or []:
        target = s.get("compute_target") or "local"
        if target not in targets:
            found.append(f"Step '{s.get('name')}' names compute target '{target}', which the workspace does not "
                         f"have (known: {', '.join(sorted(targets))}).")
    return found


def document_problems(workspace, doc: PipelineDocument) -> list[str]:
    """Every problem of a document: its own, then what it asks of this machine (``Pipeline.validate``)."""
    found = validation.problems(doc)
    if found == ["The pipeline has no steps."]:
        return found
    return found + workspace_problems(doc, workspace._compute_records())


def used_parameters(doc: PipelineDocument) -> dict:
    """The pipeline parameters some step uses, name -> default, in the order steps name them (as a
    value, or as the data of an input: a DataPath or a dataset)."""
    declared = doc.get("parameters") or {}
    data = doc.get("data") or {}
    used = {}
    for s in doc.get("steps") or []:
        names = [item["param"] for item in list(s.get("arguments") or []) + list((s.get("params") or {}).values())
                 if isinstance(item, dict) and "param" in item]
        names += [(data.get(d) or {}).get("param") for _, d, _ in input_items(s, data)
                  if (data.get(d) or {}).get("kind") == "parameter"]
        for name in names:
            used.setdefault(name, (declared.get(name) or {}).get("default"))
    return used


# how a reading step sees intermediate data ("read" on its reference) -> (dataset kind, reading options)
_READ_KINDS = {"files": "file", "delimited": "tabular", "parquet": "tabular"}


def _read_specs(s: dict) -> dict:
    """input name -> the "read" of the step's reference to it, for the inputs that have one."""
    specs = {}
    for item in list(s.get("inputs") or []) + list(s.get("arguments") or []):
        name = data_ref(item)
        if name is not None and isinstance(item.get("read"), dict):
            specs.setdefault(item.get("as") or name, item["read"])
    return specs


class _StepPlanner:
    """Turns one step entry into a StepPlan; collects problems instead of stopping at the first."""

    def __init__(self, workspace, doc, params, snapshots, identities, problems):
        self.workspace, self.doc, self.params, self.snapshots = workspace, doc, params, snapshots
        self.identities, self.problems = identities, problems
        self.data = doc.get("data") or {}
        self.producers = graph.producers(doc)

    def plan(self, s: dict, upstream: list[str]) -> StepPlan:
        name = s["name"]
        outputs = output_names(s)
        used: dict = {}
        inputs = self._inputs(s)
        arguments, template = [], []
        for a in s.get("arguments") or []:
            value = self._render(a, s, outputs, used)
            arguments.append(value)
            template.append(f"<param:{a['param']}>" if isinstance(a, dict) and "param" in a else value)
        env_vars = {}
        for key, value in (s.get("params") or {}).items():
            env_vars[f"AML_PARAMETER_{key}"] = self._render(value, s, outputs, used)
        for pname in list(used):  # parameters used in arguments reach the script as variables too
            env_vars.setdefault(f"AML_PARAMETER_{pname}", str(self.params[pname]))
        for key, value in (s.get("environment_variables") or {}).items():
            try:  # RunConfiguration.environment_variables, as in Azure ML
                env_vars.setdefault(str(key), unmask(str(key), str(value), f"Step '{name}'"))
            except ValueError as e:
                self.problems.append(str(e))
        environment = self._environment(s)
        for inp in inputs:
            env_vars[f"AZUREML_DATAREFERENCE_{inp.name}"] = Ref("input", inp.name)
        output_plans = []
        for out in outputs:
            env_vars[f"AZUREML_DATAREFERENCE_{out}"] = Ref("output", out)
            output_plans.append(self._output(out))
        folder = s.get("source_directory") or "."
        store = self.workspace._store
        hash_paths = {hp: path_fingerprint(store, Path(folder) / hp) for hp in s.get("hash_paths") or []}
        return StepPlan(
            name=name, script=s["script"], snapshot=self.snapshots[folder], arguments=arguments, env_vars=env_vars,
            parameters=used, inputs=inputs, outputs=output_plans, compute_target=s.get("compute_target") or "local",
            environment=environment, allow_reuse=s.get("allow_reuse", True),
            timeout=s.get("max_run_duration_seconds"), upstream=upstream, hash_paths=hash_paths,
            argument_template=template,
            compute_identity=self.identities[s.get("compute_target") or "local"],
            secret_fingerprints=_secret_fingerprints(store, env_vars, used, environment),
            distributed=_distributed(s.get("distributed")),
        )

    def _inputs(self, s) -> list[InputPlan]:
        inputs = []
        reads = _read_specs(s)
        for as_name, data_name, mode in input_items(s, self.data):
            what = f"Step '{s['name']}' input '{as_name}'"
            if data_name in self.producers:
                read = reads.get(as_name)
                kind = _READ_KINDS.get((read or {}).get("format"))
                if read is not None and kind is None:
                    self.problems.append(f"{what}: cannot read it as {read!r} (formats: {', '.join(_READ_KINDS)}).")
                inputs.append(InputPlan(as_name, mode, upstream=self.producers[data_name], output=data_name,
                                        dataset_kind=kind, dataset_options=dict(read or {})))
                continue
            # a DataPath chosen by a parameter names a place that may not hold data yet: Azure mounts it
            # anyway, and the datapath sample relies on it; a DataReference fixed in the pipeline must exist
            from_parameter = self.data[data_name].get("kind") == "parameter"
            try:
                ext = resolve_external(self.workspace, self._external_entry(data_name, what), what,
                                       missing_ok=from_parameter)
            except UserError as e:
                self.problems.append(str(e))
                continue
            inputs.append(InputPlan(as_name, mode, external=ext, dataset_kind=ext.dataset_kind,
                                    dataset_options=ext.dataset_options or {}))
        return inputs

    def _external_entry(self, data_name, what) -> dict:
        """The data entry of an external input; for one a parameter chooses, the parameter's value."""
        entry = self.data[data_name]
        if entry.get("kind") != "parameter":
            return entry
        value = self.params.get(entry.get("param"))
        if not isinstance(value, dict) or value.get("kind") not in ("data_reference", "dataset"):
            raise UserError(f"{what} takes its data from pipeline parameter '{entry.get('param')}', whose value "
                            f"{value!r} is not a DataPath or a dataset.")
        return value

    def _render(self, value, s, outputs, used):
        """An argument or param as the script sees it: parameter values inline, data as a path placeholder."""
        if isinstance(value, dict) and "param" in value:
            chosen = self.params[value["param"]]
            if isinstance(chosen, dict):  # a DataPath or dataset is an input, not text
                self.problems.append(f"Step '{s['name']}': parameter '{value['param']}' has data as its value "
                                     f"({chosen.get('kind')}); bind it as an input, e.g. (parameter, "
                                     "DataPathComputeBinding()) or DatasetConsumptionConfig(name, parameter).")
            used[value["param"]] = chosen
            return str(chosen)
        name = data_ref(value)
        if name is not None:
            if name in outputs:
                return Ref("output", name)
            return Ref("input", value.get("as") or input_name_for(s, name))
        if isinstance(value, (str, int, float, bool)):
            return str(value)
        self.problems.append(f"Step '{s['name']}': argument {value!r} is not a string, number, parameter or data.")
        return str(value)

    def _environment(self, s) -> EnvironmentDefinition:
        entry = s.get("environment")
        env = EnvironmentDefinition.from_dict(entry) if entry else default_environment()
        try:
            return env.with_secrets(self.workspace, f"Step '{s['name']}'")
        except UserError as e:
            self.problems.append(str(e))
            return env

    def _output(self, name) -> OutputPlan:
        entry = self.data.get(name) or {}
        destination = None
        if entry.get("destination"):
            dest = entry["destination"]
            destination = (Datastore(self.workspace, dest.get("datastore")), dest["path"])
        return OutputPlan(name, is_directory(self.doc, name), destination, entry.get("register_as"))


def make_plan(workspace, doc: PipelineDocument, pipeline_parameters: dict | None = None,
              identities: dict | None = None) -> Plan:
    """The plan of a document whose source folders are absolute; raises PipelineValidationError listing
    every problem, before anything runs. ``identities``: compute target name -> what of it enters the
    reuse key (its backend's ``identity()``; by default the target's kind)."""
    store = workspace._store
    targets = workspace._compute_records()
    identities = identities or {name: {"kind": t["kind"]} for name, t in targets.items()}
    problems = document_problems(workspace, doc)
    if problems:
        raise PipelineValidationError(problems)
    declared = used_parameters(doc)
    overrides = dict(pipeline_parameters or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise PipelineValidationError([f"Parameter '{n}' was given at submit, but no step uses a PipelineParameter "
                                       f"named '{n}' (known: {', '.join(sorted(declared)) or 'none'})." for n in unknown])
    params = {n: overrides.get(n, default) for n, default in declared.items()}
    for n, value in params.items():  # a secret-looking parameter saved with a pipeline was stored masked
        try:
            params[n] = unmask(n, value, f"Pipeline parameter '{n}'") if looks_secret(n) else value
        except ValueError as e:
            problems.append(str(e))

    snapshots: dict[str, Snapshot] = {}
    for s in doc["steps"]:
        folder = s.get("source_directory") or "."
        if folder not in snapshots:
            snapshots[folder] = take_snapshot(store, Path(folder))

    ups = graph.upstream(doc)
    planner = _StepPlanner(workspace, doc, params, snapshots, identities, problems)
    step_plans = {s["name"]: planner.plan(s, ups[s["name"]]) for s in doc["steps"]}
    if problems:
        raise PipelineValidationError(problems)
    names = graph.step_names(doc)
    downstream = graph.downstream(doc, ups)
    order = graph.topological_order(names, downstream)
    return Plan({n: step_plans[n] for n in order}, downstream, params, doc.get("description"))
