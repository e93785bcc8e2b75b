"""Pipeline parameters: values chosen at submit time, part of each consuming step's reuse key."""
from __future__ import annotations

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_param_name


class PipelineParameter:
    """A named value a submit may override, as in Azure ML (``pipeline_parameters={name: value}``)."""

    def __init__(self, name: str, default_value):
        self.name = check_param_name(name, "PipelineParameter")
        self.default_value = default_value

    def __repr__(self):
        return f"PipelineParameter(name={self.name!r}, default_value={self.default_value!r})"

    def to_dict(self):
        return {"default": parameter_value(self.default_value, self.name)}


DATA_KINDS = ("data_reference", "dataset")  # what a parameter's DataPath or dataset value is described as


def parameter_value(value, name):
    """A value as documents and runs keep it: a DataPath or a dataset becomes its description, never
    the live object (``pipeline_parameters={"data": DataPath(...)}`` at submit, or a default)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    describe = getattr(value, "to_dict", None)
    described = describe() if callable(describe) else None
    if not isinstance(described, dict) or described.get("kind") not in DATA_KINDS:
        raise UserError(f"Pipeline parameter '{name}' has value {value!r}; a parameter's value is a string, "
                        "number, boolean, DataPath, FileDataset or TabularDataset.")
    return described


def parameter_values(values: dict | None) -> dict:
    return {name: parameter_value(value, name) for name, value in (values or {}).items()}


def parse_value(text: str):
    """A ``k=v`` value from a command line: JSON-ish scalars become numbers and booleans."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


def parse_assignments(items, what="--param") -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{what} {item!r} is not of the form NAME=VALUE.")
        out[key.strip()] = parse_value(value)
    return out
