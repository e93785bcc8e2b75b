"""Modules as in Azure ML SDK v1 (``azureml.pipeline.core.module``): a named, versioned script with a
declared interface (input and output ports, parameters) that pipelines use through ``ModuleStep``.

Versions live in the workspace (store/modules.py), each with a frozen copy of the folder it was
published from, so a pipeline built next month runs what was published. A ``ModuleStep`` is a
``PythonScriptStep`` of that copy: planning, reuse and every compute target treat it like any step.
The version is resolved when the step is built (Azure resolves at submission; locally the two are
moments apart), by Azure's rules: the version asked for, else the default one, else the highest of
dotted numbers, else the one updated last; disabled versions are never picked.
"""
from __future__ import annotations

from pathlib import Path

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_data_name, check_registry_name
from mlpipe_jupyter.sdk.data import (AbstractDataset, DataReference, DatasetConsumptionConfig, FileDataset,
                                     InputBinding, ParameterInput, PipelineData)
from mlpipe_jupyter.model.environment import is_default_environment
from mlpipe_jupyter.sdk.environment import Environment
from mlpipe_jupyter.sdk.parameters import PipelineParameter
from mlpipe_jupyter.sdk.run_config import RunConfiguration
from mlpipe_jupyter.sdk.step import PythonScriptStep

STATUSES = ("Active", "Deprecated", "Disabled")


def _mode(mode, allowed, what):
    if mode is not None and mode not in allowed:
        raise UserError(f"{what}: default_datastore_mode must be one of {', '.join(allowed)} (got {mode!r}).")
    return mode


class InputPortDef:
    """An input a module version declares; a ``ModuleStep`` wires data to it by name (``inputs_map``)."""

    def __init__(self, name, data_types=None, default_datastore_mode=None, default_path_on_compute=None,
                 is_optional=False, default_overwrite=None, default_data_reference_name=None, is_resource=False,
                 label=None, additional_transformations=None, **kwargs):
        self._name = check_data_name("InputPortDef", name)
        self._data_types = list(data_types) if data_types is not None else ["AnyFile", "AnyDirectory"]
        self._default_datastore_mode = _mode(default_datastore_mode, ("mount", "download"), f"InputPortDef '{name}'")
        self._default_path_on_compute = default_path_on_compute
        self._is_optional = bool(is_optional)
        self._default_overwrite = default_overwrite
        self._default_data_reference_name = default_data_reference_name
        self._is_resource = bool(is_resource)
        self._label = label
        self._additional_transformations = additional_transformations

    name = property(lambda self: self._name)
    data_types = property(lambda self: self._data_types)
    default_datastore_mode = property(lambda self: self._default_datastore_mode)
    default_path_on_compute = property(lambda self: self._default_path_on_compute)
    is_optional = property(lambda self: self._is_optional)
    default_overwrite = property(lambda self: self._default_overwrite)
    default_data_reference_name = property(lambda self: self._default_data_reference_name)
    is_resource = property(lambda self: self._is_resource)
    label = property(lambda self: self._label)
    additional_transformations = property(lambda self: self._additional_transformations)

    _FIELDS = ("name", "data_types", "default_datastore_mode", "default_path_on_compute", "is_optional",
               "default_overwrite", "default_data_reference_name", "is_resource", "label")

    def _to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self._FIELDS}

    @classmethod
    def _from_dict(cls, d: dict):
        return cls(**{f: d.get(f) for f in cls._FIELDS if f in d})

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class OutputPortDef:
    """An output a module version declares; a ``ModuleStep`` wires a ``PipelineData`` to it (``outputs_map``)."""

    def __init__(self, name, default_datastore_name=None, default_datastore_mode=None, default_path_on_compute=None,
                 is_directory=False, data_type=None, default_overwrite=None, training_output=None, label=None):
        self._name = check_data_name("OutputPortDef", name)
        self._default_datastore_name = default_datastore_name
        self._default_datastore_mode = _mode(default_datastore_mode, ("mount", "upload"), f"OutputPortDef '{name}'")
        self._default_path_on_compute = default_path_on_compute
        self._is_directory = bool(is_directory)
        self._data_type = data_type
        self._default_overwrite = default_overwrite
        self._training_output = training_output
        self._label = label

    name = property(lambda self: self._name)
    default_datastore_name = property(lambda self: self._default_datastore_name)
    default_datastore_mode = property(lambda self: self._default_datastore_mode)
    default_path_on_compute = property(lambda self: self._default_path_on_compute)
    is_directory = property(lambda self: self._is_directory)
    data_type = property(lambda self: self._data_type)
    default_overwrite = property(lambda self: self._default_overwrite)
    training_output = property(lambda self: self._training_output)
    label = property(lambda self: self._label)

    _FIELDS = ("name", "default_datastore_name", "default_datastore_mode", "default_path_on_compute", "is_directory",
               "data_type", "default_overwrite", "label")
    _to_dict = InputPortDef._to_dict
    _from_dict = classmethod(InputPortDef._from_dict.__func__)
    __repr__ = InputPortDef.__repr__


class ModuleVersionDescriptor:
    """A version's number and id, as ``Module.module_version_list()`` lists them."""

    def __init__(self, version, module_version_id):
        self._version = version
        self._module_version_id = module_version_id

    version = property(lambda self: self._version)
    module_version_id = property(lambda self: self._module_version_id)

    def __eq__(self, other):
        return isinstance(other, ModuleVersionDescriptor) and \
            (self.version, self.module_version_id) == (other.version, other.module_version_id)

    __hash__ = None

    def __repr__(self):
        return f"ModuleVersionDescriptor(Version: {self.version}, ModuleVersionId: {self.module_version_id})"


class ModuleInterface:
    """What a version declares: ``inputs`` and ``outputs`` (port definitions) and ``parameters``
    (name -> default value)."""

    def __init__(self, inputs, outputs, parameters):
        self.inputs, self.outputs, self.parameters = inputs, outputs, parameters

    def __repr__(self):
        return (f"ModuleInterface(inputs={[p.name for p in self.inputs]}, outputs={[p.name for p in self.outputs]}, "
                f"parameters={self.parameters})")


def _store(workspace):
    store = getattr(workspace, "_store", None)
    if store is None:
        raise UserError(f"Modules live in a workspace; pass a Workspace, not {workspace!r}.")
    return store


class ModuleVersion:
    """One published version of a module; made by ``Module.publish_python_script``, not directly."""

    def __init__(self, workspace, module_entity, version=None, _module_version_provider=None):
        self._workspace = workspace
        self._entity = module_entity  # the store's row
        self._version = module_entity["version"] if version is None else version

    @staticmethod
    def get(workspace, module_version_id=None, _workflow_provider=None) -> "ModuleVersion":
        row = _store(workspace).module_version(module_version_id) if module_version_id else None
        if row is None:
            raise UserError(f"ModuleVersion.get: no module version with id {module_version_id!r} in this workspace.")
        return ModuleVersion(workspace, row)

    status = property(lambda self: self._entity["status"])
    module_id = property(lambda self: self._entity["module_id"])
    description = property(lambda self: self._entity["description"])
    module_version_id = property(lambda self: self._entity["id"])
    version = property(lambda self: self._version)
    category = property(lambda self: self._entity["definition"].get("category"))

    @property
    def interface(self) -> ModuleInterface:
        d = self._entity["definition"]
        return ModuleInterface([InputPortDef._from_dict(p) for p in d.get("inputs", [])],
                               [OutputPortDef._from_dict(p) for p in d.get("outputs", [])],
                               dict(d.get("params") or {}))

    @property
    def runconfig(self):
        """The RunConfiguration it was published with, or None."""
        stored = self._entity["definition"].get("runconfig")
        if stored is None:
            return None
        rc = RunConfiguration()
        if stored.get("environment"):
            rc.environment = Environment.from_dict(stored["environment"])
        rc.environment_variables = dict(stored.get("environment_variables") or {})
        rc.max_run_duration_seconds = stored.get("max_run_duration_seconds")
        return rc

    @property
    def script_name(self) -> str:
        return self._entity["definition"]["script"]

    @property
    def source_directory(self) -> str:
        """The frozen copy of the folder it was published from (read-only)."""
        return str(_store(self._workspace).module_files(self._entity["digest"]))

    def module(self, _workflow_provider=None) -> "Module":
        return Module.get(self._workspace, module_id=self.module_id)

    def set_description(self, description) -> None:
        if description is None:
            raise UserError(f"ModuleVersion {self.version}: set_description needs a description.")
        self._update(description=str(description))

    def enable(self) -> None:
        self._update(status="Active")

    def disable(self) -> None:
        self._update(status="Disabled")

    def deprecate(self) -> None:
        self._update(status="Deprecated")

    def _update(self, **fields) -> None:
        store = _store(self._workspace)
        store.update_module_version(self.module_version_id, **fields)
        self._entity = store.module_version(self.module_version_id)

    def __eq__(self, other):
        return isinstance(other, ModuleVersion) and other.module_version_id == self.module_version_id

    __hash__ = None

    def __repr__(self):
        return (f"ModuleVersion(status: {self.status}, version: {self.version}, module_id: {self.module_id}, "
                f"module_version_id: {self.module_version_id})")


class Module:
    """A named container of versions, unique by name in its workspace: ``Module.create(ws, name,
    description)``, then ``publish_python_script(...)`` once per version."""

    def __init__(self, workspace, module_id, name, description, status, default_version, module_version_list,
                 _module_provider=None, _module_version_provider=None):
        self._workspace = workspace
        self._id = module_id
        self._name = name
        self._description = description
        self._status = status
        self._default_version = default_version
        self._module_version_list = list(module_version_list)

    @staticmethod
    def _from_row(workspace, row) -> "Module":
        versions = [ModuleVersionDescriptor(v["version"], v["id"]) for v in _store(workspace).module_versions(row["id"])]
        return Module(workspace, row["id"], row["name"], row["description"], row["status"], row["default_version"],
                      versions)

    @staticmethod
    def create(workspace, name, description, _workflow_provider=None) -> "Module":
        check_registry_name("Module", name)
        row = _store(workspace).create_module(name, None if description is None else str(description))
        if row is None:
            raise UserError(f"Module.create: a module named '{name}' already exists in this workspace (names are "
                            f"unique); use Module.get(ws, name='{name}') to add versions to it.")
        return Module._from_row(workspace, row)

    @staticmethod
    def get(workspace, module_id=None, name=None, _workflow_provider=None) -> "Module":
        if module_id is None and name is None:
            raise UserError("Module.get needs a module_id or a name.")
        row = _store(workspace).module(module_id=module_id, name=name)
        if row is None:
            what = f"id '{module_id}'" if module_id is not None else f"name '{name}'"
            known = ", ".join(_store(workspace).module_names()) or "none"
            raise UserError(f"Module.get: no module with {what} in this workspace (modules: {known}).")
        return Module._from_row(workspace, row)

    @staticmethod
    def get_versions(workspace, name, _workflow_provider=None) -> list:
        return Module.get(workspace, name=name).module_version_list()

    id = property(lambda self: self._id)
    name = property(lambda self: self._name)
    description = property(lambda self: self._description)
    status = property(lambda self: self._status)
    default_version = property(lambda self: self._default_version)

    def module_version_list(self) -> list:
        """Every version as a ``ModuleVersionDescriptor``, in the order they were published."""
        return list(self._module_version_list)

    def _reload(self) -> None:
        fresh = Module.get(self._workspace, module_id=self._id)
        self.__dict__.update(fresh.__dict__)

    # -- publishing ------------------------------------------------------------------------------------
    def publish_python_script(self, script_name, description, inputs, outputs, params=None,
                              create_sequencing_ports=True, version=None, is_default=False, source_directory=None,
                              hash_paths=None, category=None, arguments=None, runconfig=None) -> ModuleVersion:
        """A new version running ``script_name`` from a frozen copy of ``source_directory``.

        ``params`` are name -> default value; a step's ``params`` and the pipeline parameters in its
        arguments override them (each reaches the script as ``AML_PARAMETER_<name>``). ``arguments``
        (strings, port definitions, pipeline parameters) are used by steps that give none."""
        where = f"Module '{self.name}'"
        source = Path(source_directory if source_directory is not None else ".")
        if not script_name or not isinstance(script_name, str):
            raise UserError(f"{where}: publish_python_script needs a script_name (got {script_name!r}).")
        if not (source / script_name).is_file():
            raise UserError(f"{where}: script '{script_name}' not found at '{(source / script_name).resolve()}'; "
                            "give the source_directory it is in.")
        inputs, outputs = list(inputs or []), list(outputs or [])
        for port, kind in [(p, InputPortDef) for p in inputs] + [(p, OutputPortDef) for p in outputs]:
            if not isinstance(port, kind):
                raise UserError(f"{where}: {port!r} is not an {kind.__name__} "
                                f"({'inputs' if kind is InputPortDef else 'outputs'} take {kind.__name__} objects).")
        names = [p.name for p in inputs + outputs]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise UserError(f"{where}: port name{'s' if len(doubled) > 1 else ''} {', '.join(doubled)} used twice; "
                            "each input and output needs its own name.")
        if version is not None:
            version = str(version)
            if any(d.version == version for d in self._module_version_list):
                raise UserError(f"{where}: version '{version}' already exists; publish under a new version.")
        definition = {"script": script_name, "inputs": [p._to_dict() for p in inputs],
                      "outputs": [p._to_dict() for p in outputs], "params": _param_defaults(where, params),
                      "arguments": _stored_arguments(where, arguments, names), "category": category,
                      "runconfig": _stored_runconfig(runconfig)}
        row = _store(self._workspace).add_module_version(self._id, version, description, definition, source)
        if row is None:
            raise UserError(f"{where}: version '{version}' already exists; publish under a new version.")
        self._reload()
        if is_default:
            self.set_default_version(row["version"])
        return ModuleVersion(self._workspace, row)

    def publish_adla_script(self, *args, **kwargs):
        raise UserError(f"Module '{self.name}': publish_adla_script needs Azure Data Lake Analytics, which does not "
                        "run locally; publish a Python script with publish_python_script.")

    def publish_azure_batch(self, *args, **kwargs):
        raise UserError(f"Module '{self.name}': publish_azure_batch needs Azure Batch, which does not run locally; "
                        "publish a Python script with publish_python_script.")

    # -- versions -----------------------------------------------------------------------------------------
    def resolve(self, version=None) -> ModuleVersion:
        """The version a step uses (see the module docstring for the rules)."""
        self._reload()
        store = _store(self._workspace)
        rows = store.module_versions(self._id)
        if version is not None:
            found = [r for r in rows if r["version"] == str(version)]
            if not found:
                raise UserError(f"Module '{self.name}' has no version '{version}' "
                                f"(versions: {', '.join(str(r['version']) for r in rows) or 'none'}).")
            return ModuleVersion(self._workspace, found[0])
        default = self.get_default()
        if default is not None:
            return default
        usable = [r for r in rows if r["status"] != "Disabled"]
        if not usable:
            raise UserError(f"Module '{self.name}' has no version to use"
                            f"{' that is not disabled' if rows else ''}; publish one with publish_python_script.")
        if all(_dotted_number(r["version"]) for r in usable):
            best = max(usable, key=lambda r: tuple(int(x) for x in r["version"].split(".")))
        else:
            best = max(usable, key=lambda r: r["updated"])
        return ModuleVersion(self._workspace, best)

    def get_default_version(self):
        return self._default_version

    def set_default_version(self, version_id) -> None:
        """Make the version numbered ``version_id`` (a version such as "2", as in Azure) the default."""
        if version_id is None:
            raise UserError(f"Module '{self.name}': set_default_version needs a version.")
        if not any(d.version == str(version_id) for d in self._module_version_list):
            raise UserError(f"Module '{self.name}' has no version '{version_id}' (versions: "
                            f"{', '.join(str(d.version) for d in self._module_version_list) or 'none'}).")
        self._update(default_version=str(version_id))

    def get_default(self):
        """The default version, or None when there is none."""
        found = next((d for d in self._module_version_list if d.version is not None
                      and d.version == self._default_version), None)
        return None if found is None else ModuleVersion.get(self._workspace, found.module_version_id)

    # -- the module itself ------------------------------------------------------------------------------
    def enable(self) -> None:
        self._update(status="Active")

    def disable(self) -> None:
        self._update(status="Disabled")

    def deprecate(self) -> None:
        self._update(status="Deprecated")

    def set_name(self, name) -> None:
        if name is None:
            raise UserError(f"Module '{self.name}': set_name needs a name.")
        check_registry_name("Module", name)
        if not _store(self._workspace).update_module(self._id, name=name):
            raise UserError(f"Module '{self.name}': another module is already named '{name}'.")
        self._reload()

    def set_description(self, description) -> None:
        if description is None:
            raise UserError(f"Module '{self.name}': set_description needs a description.")
        self._update(description=str(description))

    def _update(self, **fields) -> None:
        _store(self._workspace).update_module(self._id, **fields)
        self._reload()

    def __eq__(self, other):
        return isinstance(other, Module) and other.id == self.id

    __hash__ = None

    def __repr__(self):
        versions = [(d.version, d.module_version_id) for d in self._module_version_list]
        return f"Module(Name: {self.name},\nId: {self.id},\nDescription: {self.description},\nVersions: {versions})"


def _dotted_number(version) -> bool:
    return isinstance(version, str) and all(part.isdigit() for part in version.split("."))


def _param_defaults(where, params) -> dict:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise UserError(f"{where}: params must be a dict of name -> default value (got {params!r}).")
    out = {}
    for name, value in params.items():
        if isinstance(value, PipelineParameter):
            value = value.default_value
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise UserError(f"{where}: the default of parameter '{name}' must be a string, number or bool "
                            f"(got {value!r}).")
        out[str(name)] = value
    return out


def _stored_arguments(where, arguments, port_names) -> list | None:
    if arguments is None:
        return None
    out = []
    for a in arguments:
        if isinstance(a, InputPortDef):
            out.append({"input": a.name})
        elif isinstance(a, OutputPortDef):
            out.append({"output": a.name})
        elif isinstance(a, PipelineParameter):
            out.append({"param": a.name, "default": a.default_value})
        elif isinstance(a, (str, int, float)) and not isinstance(a, bool):
            out.append(str(a))
        else:
            raise UserError(f"{where}: argument {a!r} is not a string, port definition or PipelineParameter.")
        if isinstance(a, (InputPortDef, OutputPortDef)) and a.name not in port_names:
            raise UserError(f"{where}: argument {a!r} is not one of the version's inputs or outputs.")
    return out


def _stored_runconfig(runconfig) -> dict | None:
    if runconfig is None:
        return None
    env = runconfig.environment
    return {"environment": None if is_default_environment(env) else env.to_dict(),
            "environment_variables": dict(getattr(runconfig, "environment_variables", None) or {}),
            "max_run_duration_seconds": runconfig.max_run_duration_seconds}


class ModuleStep(PythonScriptStep):
    """A step running one version of a module: ``ModuleStep(module=m)`` (resolved), ``ModuleStep(module=m,
    version="2")`` or ``ModuleStep(module_version=mv)``.

    ``inputs_map`` and ``outputs_map`` wire data to the version's port names. A step input is named
    after its port (``AZUREML_DATAREFERENCE_in1``); an output keeps its own name, which keys it in the
    pipeline. Without a ``name`` the step is named after the module (three steps of one module in a
    pipeline: ``M``, ``M (2)``, ``M (3)``)."""

    def __init__(self, module=None, version=None, module_version=None, inputs_map=None, outputs_map=None,
                 compute_target=None, runconfig=None, runconfig_pipeline_params=None, arguments=None, params=None,
                 name=None, _workflow_provider=None):
        if (module is None) == (module_version is None):
            raise UserError("ModuleStep needs exactly one of module or module_version "
                            f"({'both are' if module is not None else 'neither is'} given).")
        if module_version is not None:
            if not isinstance(module_version, ModuleVersion):
                raise UserError(f"ModuleStep: module_version must be a ModuleVersion (got {module_version!r}).")
            module = module_version.module()
        elif not isinstance(module, Module):
            raise UserError(f"ModuleStep: module must be a Module (got {module!r}).")
        else:
            module_version = module.resolve(version)
        where = f"ModuleStep of module '{module.name}' version '{module_version.version}'"
        if module.status == "Disabled":
            raise UserError(f"{where}: the module is disabled; enable() it first.")
        if module_version.status == "Disabled":
            raise UserError(f"{where}: this version is disabled; enable() it or use another version.")
        interface = module_version.interface
        inputs_map, outputs_map = dict(inputs_map or {}), dict(outputs_map or {})
        in_ports = {p.name: p for p in interface.inputs}
        out_ports = {p.name: p for p in interface.outputs}
        for what, mapping, ports in (("inputs_map", inputs_map, in_ports), ("outputs_map", outputs_map, out_ports)):
            unknown = [k for k in mapping if k not in ports]
            if unknown:
                raise UserError(f"{where}: {what} names {', '.join(map(repr, unknown))}, which the version does not "
                                f"declare (its {what[:-4]}: {', '.join(ports) or 'none'}).")
        missing = [n for n, p in in_ports.items() if not p.is_optional and n not in inputs_map]
        if missing:
            raise UserError(f"{where}: input{'s' if len(missing) > 1 else ''} {', '.join(missing)} of the version "
                            "are not wired; give them in inputs_map.")
        wired = {}  # id(data given) -> what the step uses
        bound_inputs = []
        for port_name, data in inputs_map.items():
            bound = _bind_input(where, in_ports[port_name], data)
            wired[id(data)] = bound
            bound_inputs.append(bound)
        for port_name, data in outputs_map.items():
            if not isinstance(data, PipelineData):
                raise UserError(f"{where}: output '{port_name}' must be wired to a PipelineData or "
                                f"OutputFileDatasetConfig (got {data!r}).")
            wired[id(data)] = data
        stored = module_version._entity["definition"].get("arguments")
        if not arguments and stored:
            arguments = _arguments_from(stored, inputs_map, outputs_map, wired)
        arguments = [wired.get(id(a), a) for a in arguments or []]
        merged = dict(interface.parameters)
        own = dict(params or {})
        for p in arguments:
            if isinstance(p, PipelineParameter):
                if p.name in own and own[p.name] is not p:
                    raise UserError(f"{where}: parameter name '{p.name}' is given in params and as a pipeline "
                                    "parameter in the arguments; use one.")
                merged[p.name] = p
        merged.update(own)
        super().__init__(module_version.script_name, name=name or module.name, arguments=arguments,
                         compute_target=compute_target,
                         runconfig=runconfig or module_version.runconfig or RunConfiguration(),
                         runconfig_pipeline_params=runconfig_pipeline_params, inputs=bound_inputs,
                         outputs=list(outputs_map.values()), params=merged,
                         source_directory=module_version.source_directory)
        self._auto_named = name is None  # a pipeline tells two unnamed steps of one module apart
        self._default_name = self.name
        self.module = module
        self.module_version = module_version
        self._module_wiring = {"inputs": inputs_map, "outputs": outputs_map}

    def __repr__(self):
        return f"ModuleStep(name={self.name!r}, module={self.module.name!r}, version={self.module_version.version!r})"


def _bind_input(where, port: InputPortDef, data):
    """``data`` as the step reads it: under the port's name, in the port's default mode unless the data says."""
    mode = port.default_datastore_mode
    if isinstance(data, InputBinding):
        return data._with(input_name=port.name)
    if isinstance(data, PipelineData):
        return InputBinding(data, port.name, mode or "mount", data._read)
    if isinstance(data, DatasetConsumptionConfig):
        return DatasetConsumptionConfig(port.name, data.dataset, data.mode)
    if isinstance(data, AbstractDataset):
        chosen = mode if mode and isinstance(data, FileDataset) else "direct"
        return DatasetConsumptionConfig(port.name, data, chosen)
    if isinstance(data, DataReference):
        return DataReference(data.datastore, port.name, data.path_on_datastore, data.mode, data.path_on_compute,
                             data.overwrite)
    if isinstance(data, ParameterInput):
        return ParameterInput(data.param, port.name, data.mode)
    raise UserError(f"{where}: input '{port.name}' is wired to {data!r}, which is not a data object (PipelineData, "
                    "a dataset, a DataReference or a data PipelineParameter).")


def _arguments_from(stored, inputs_map, outputs_map, wired) -> list:
    """The version's published arguments with its ports replaced by the data wired to them."""
    out = []
    for a in stored:
        if isinstance(a, dict) and "input" in a:
            if a["input"] in inputs_map:  # an optional input left unwired drops out with its value
                out.append(wired[id(inputs_map[a["input"]])])
            elif out and isinstance(out[-1], str) and out[-1].startswith("-"):
                out.pop()
        elif isinstance(a, dict) and "output" in a:
            if a["output"] in outputs_map:
                out.append(outputs_map[a["output"]])
            elif out and isinstance(out[-1], str) and out[-1].startswith("-"):
                out.pop()
        elif isinstance(a, dict) and "param" in a:
            out.append(PipelineParameter(a["param"], a.get("default")))
        else:
            out.append(a)
    return out

