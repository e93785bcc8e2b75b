"""The rules for names, in one place.

Names come from every file a user hands over (scripts, pipeline files, notebook metadata) and become
file and folder names (``cell_<step>.py``, ``registered/<name>/``), registry keys and environment
variables (``AML_PARAMETER_<name>``). One set of rules, checked before a name is used for any of
these, keeps a name like ``../../x`` or ``a\\nb`` from ever reaching a path or an environment.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata

from mlpipe_jupyter.errors import UserError

# Anchored with \Z, not $, which would also match before a trailing newline.
# Step names are free text in Azure ("Cleanse Green Taxi Data", "train.py"); only what would make a file
# name unsafe or ambiguous is refused: separators, characters Windows forbids, '..', leading '.'/'-'/space,
# trailing space or '.', and control characters (checked apart, by Unicode category).
STEP_NAME = re.compile(r'^(?![.\-\s])(?!.*\.\.)[^/\\<>:"|?*]+(?<![\s.])\Z', re.DOTALL)
DATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
REGISTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\Z")

STEP_NAME_MAX = 200  # becomes part of file names, cell_<name>.py
DATA_NAME_MAX = 200
REGISTRY_NAME_MAX = 250
ENV_VAR_NAME_MAX = 255
PARAM_PREFIX = "AML_PARAMETER_"  # a step parameter reaches its script as this environment variable
PARAM_NAME_MAX = ENV_VAR_NAME_MAX - len(PARAM_PREFIX)

_STEP_RULE = ("any text without '/', '\\', '<', '>', ':', '\"', '|', '?', '*', '..' or control characters, not "
              "starting with '.', '-' or a space and not ending with a space or '.'")
_DATA_RULE = "start with a letter or '_', then letters, digits or '_'"
_REGISTRY_RULE = "start with a letter or digit, then letters, digits, '_', '.' or '-'"
_VAR_RULE = "start with a letter or '_', then letters, digits, '_', '.' or '-'"


def _short(name: str) -> str:
    return repr(name) if len(name) <= 40 else repr(name[:40]) + "..."


def _check(pattern, limit: int, name, label: str, rule: str) -> str:
    if isinstance(name, str) and pattern.match(name) and len(name) <= limit:
        return name
    if isinstance(name, str) and pattern.match(name):
        raise UserError(f"{label} {_short(name)} is too long ({len(name)} characters; at most {limit}).")
    raise UserError(f"{label} {name!r} is not valid: {rule}.")


def check_step_name(name, where: str = "") -> str:
    """A step name; ``where`` (say ``%%step``) prefixes the message."""
    label = f"{where}: step name" if where else "Step name"
    if isinstance(name, str) and any(unicodedata.category(c).startswith("C") for c in name):
        raise UserError(f"{label} {name!r} is not valid: {_STEP_RULE}.")
    return _check(STEP_NAME, STEP_NAME_MAX, name, label, _STEP_RULE)


def check_data_name(kind: str, name) -> str:
    """The name of data (an output, an input): ``kind`` says which, as in "PipelineData name 'x'"."""
    return _check(DATA_NAME, DATA_NAME_MAX, name, f"{kind} name", _DATA_RULE)


def check_registry_name(kind: str, name) -> str:
    """A name in a workspace registry: a dataset, datastore, compute target or environment."""
    return _check(REGISTRY_NAME, REGISTRY_NAME_MAX, name, f"{kind} name", _REGISTRY_RULE)


def check_param_name(name, what: str = "Parameter") -> str:
    """A parameter name: it reaches the script as the environment variable AML_PARAMETER_<name>."""
    return _check(ENV_VAR_NAME, PARAM_NAME_MAX, name, f"{what} name", _VAR_RULE)


def check_env_var_name(name, where: str) -> str:
    return _check(ENV_VAR_NAME, ENV_VAR_NAME_MAX, name, f"{where}: environment variable name", _VAR_RULE)


def check_env_var_value(name, value, where: str, numbers: bool = True):
    """A value the environment can hold: a string without NUL characters, or (``numbers``) a number,
    for values that are turned into text before they reach the environment."""
    if (numbers and isinstance(value, (int, float))) or (isinstance(value, str) and "\0" not in value):
        return value
    kind = "a string or a number" if numbers else "a string"
    raise UserError(f"{where}: environment variable '{name}' has value {value!r}; give {kind} without NUL "
                    "characters.")


def check_relative_script(script, where: str) -> str:
    """A script path that stays inside its source directory: relative, with no '..' component."""
    text = script.replace("\\", "/") if isinstance(script, str) else ""
    parts = text.split("/")
    if not text.strip() or "\0" in text or posixpath.isabs(text) or re.match(r"^[A-Za-z]:", text) or ".." in parts:
        raise UserError(f"{where}: script {script!r} must be a relative path inside its source directory "
                        "(no absolute path, no '..').")
    return script


def fit_data_name(name: str, room: int = 0) -> str:
    """A made-up data name cut to the length limit (leaving ``room`` for a suffix); a digest of the whole
    keeps two long names apart."""
    limit = DATA_NAME_MAX - room
    if len(name) <= limit:
        return name
    return f"{name[:limit - 9]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
