"""A ``%%step`` cell as a real step: a generated script in the workspace, and its pipeline-file entry.

Each cell gets its own folder, ``.mlpipe/cells/<notebook>/<step>/cell_<step>.py``, so its snapshot
holds that cell only: editing one cell changes one snapshot, and only that step and the steps fed
by its (changed) outputs rerun. The script is the cell body under a short preamble that defines
``inputs``, ``outputs``, ``params`` and ``run``, so it runs the same on every compute target.

Imports from the notebook's folder keep working: the preamble puts that folder on ``sys.path``, and
the folder's modules the cell imports (followed through their own imports) are listed in the step's
``hash_paths``, so editing such a module reruns the steps that use it, and only those.
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_data_name, check_param_name, check_step_name
from mlpipe_jupyter.planning.reuse import START_SETTING
from mlpipe_jupyter.running.tracebacks import read_origin, write_origin
from mlpipe_jupyter.sdk.environment import Environment

MARKER = "# ---- cell body ----"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class CellSpec:
    """What a ``%%step`` line and its cell say, with defaults already applied."""

    name: str
    body: str
    inputs: list = field(default_factory=list)  # [name, source or None]
    outputs: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    compute: str = "local"
    environment: str | None = None
    allow_reuse: bool = True
    source_dir: str | None = None  # relative to the notebook folder
    cold: bool = False  # never a warm start (compute/warm.py)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "CellSpec":
        """A spec saved by ``to_dict`` (say, in notebook metadata); any field of the wrong type is a UserError."""
        if not isinstance(d, dict):
            raise UserError(f"The 'cell' entry is not a mapping (got {d!r}).")
        name = d.get("name")
        if not isinstance(name, str):
            raise UserError(f"The cell's name must be a string (got {name!r}).")

        def wrong(field_name, expected):
            return UserError(f"Cell '{name}': {field_name} must be {expected} (got {d.get(field_name)!r}).")

        if not isinstance(d.get("body"), str):
            raise wrong("body", "the cell's code as a string")
        inputs = d.get("inputs", [])
        pairs = isinstance(inputs, list) and all(isinstance(i, (list, tuple)) and len(i) == 2 for i in inputs)
        if not pairs or not all(isinstance(n, str) and isinstance(src, (str, type(None))) for n, src in inputs):
            raise wrong("inputs", "a list of [name, source or null] pairs")
        outputs = d.get("outputs", [])
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise wrong("outputs", "a list of names")
        params = d.get("params", {})
        if not isinstance(params, dict) or not all(
                isinstance(k, str) and isinstance(v, (str, int, float, bool, type(None))) for k, v in params.items()):
            raise wrong("params", "a mapping of names to strings, numbers, booleans or null")
        for key, expected in (("compute", str), ("environment", (str, type(None))), ("allow_reuse", bool),
                              ("source_dir", (str, type(None))), ("cold", bool)):
            if key in d and not isinstance(d[key], expected):
                raise wrong(key, "true or false" if key in ("allow_reuse", "cold") else
                            "a string" if key == "compute" else "a string or null")
        known = CellSpec.__dataclass_fields__
        spec = CellSpec(**{k: v for k, v in d.items() if k in known})
        spec.inputs = [list(i) for i in spec.inputs]
        spec.outputs, spec.params = list(spec.outputs), dict(spec.params)
        return spec

    @property
    def linked_inputs(self) -> list[str]:
        return [n for n, src in self.inputs if src is None]


def safe_key(text: str) -> str:
    """A folder name from a notebook name."""
    return _SAFE.sub("-", text).strip("-.") or "session"


def check_body(name: str, body: str) -> None:
    """The cell must be plain Python: it becomes a script, where magics and ``!`` lines cannot run."""
    try:
        compile(body, f"<cell {name}>", "exec")
    except SyntaxError as e:
        text = (e.text or "").strip()
        where = f"line {e.lineno}: {e.msg}" + (f": {text!r}" if text else "")
        raise UserError(f"The cell of step '{name}' is not plain Python ({where}); a step runs as a script, "
                        "without IPython magics.") from None


def _param_kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "none" if value is None else "str"


def script_text(spec: CellSpec, notebook_dir: Path) -> str:
    """The generated script: a fixed preamble, a marker line, then the cell body unchanged.

    It depends on the cell only (not on the notebook's name), so a kernel and ``mlpipe run`` write the
    same script and share reuse."""
    linked = [n for n, _ in spec.inputs]
    kinds = {k: _param_kind(v) for k, v in spec.params.items()}
    return f'''# Step {spec.name!r}, generated from its %%step cell.
# The preamble gives the cell `inputs`, `outputs` (name -> path), `params` and `run`.
import os as _os
import sys as _sys

_NOTEBOOK_DIR = {str(notebook_dir)!r}
if _os.path.isdir(_NOTEBOOK_DIR) and _NOTEBOOK_DIR not in _sys.path:
    _sys.path.insert(1, _NOTEBOOK_DIR)


def _param(name, kind):
    text = _os.environ["AML_PARAMETER_" + name]
    if kind == "bool":
        return text in ("True", "true", "1")
    if kind in ("int", "float"):
        number = float(text)
        return int(number) if kind == "int" and number.is_integer() else number
    return None if kind == "none" and text == "None" else text


from mlpipe_jupyter import Run as _Run

inputs = {{name: _os.environ["AZUREML_DATAREFERENCE_" + name] for name in {linked!r}}}
outputs = {{name: _os.environ["AZUREML_DATAREFERENCE_" + name] for name in {list(spec.outputs)!r}}}
params = {{name: _param(name, kind) for name, kind in {kinds!r}.items()}}
run = _Run.get_context()
{MARKER}
{spec.body.rstrip()}
'''


def body_first_line(text: str) -> int:
    """The script's line number (from 1) of the cell body's first line."""
    return text.splitlines().index(MARKER) + 2


def body_from_script(text: str) -> str:
    """The cell body back from a generated script (for showing what ran)."""
    _, sep, body = text.partition(MARKER + "\n")
    return body if sep else text


# -- imports from the notebook folder ---------------------------------------------------------------------
def _imported_top_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def local_module_files(body: str, notebook_dir: Path) -> list[Path]:
    """The notebook folder's Python files a cell uses, following their own imports of that folder."""
    found: list[Path] = []
    todo = [body]
    seen_names: set[str] = set()
    while todo:
        for name in sorted(_imported_top_names(todo.pop()) - seen_names):
            seen_names.add(name)
            module, package = notebook_dir / f"{name}.py", notebook_dir / name
            if module.is_file():
                files = [module]
            elif (package / "__init__.py").is_file():
                files = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
            else:
                continue
            for f in files:
                if f not in found:
                    found.append(f)
                    todo.append(f.read_text(errors="replace"))
    return found


# -- the step as a pipeline-file entry ------------------------------------------------------------------------
@dataclass
class CellStep:
    """A recorded cell: where its script lives and its entry in the pipeline file format."""

    spec: CellSpec
    source_directory: Path
    script: str  # relative to source_directory
    script_text: str
    step_doc: dict
    data_docs: dict
    param_docs: dict
    execution_count: int | None = None  # the cell's In[] number when a kernel recorded it

    def write_script(self) -> Path:
        """Write the script when its text changed (an unchanged file keeps its stat, so nothing rehashes),
        and its origin, so a traceback names the cell and its line (running/tracebacks.py)."""
        path = self.source_directory / self.script
        if not path.is_file() or path.read_text() != self.script_text:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(self.script_text)
            os.replace(tmp, path)
        if self.execution_count is not None:
            label = f"Cell In[{self.execution_count}]"
        else:  # rewritten without a kernel's count (the designer, mlpipe run): the cell keeps its last one
            old = read_origin(self.source_directory, self.script)
            label = old["label"] if old and old["label"].startswith("Cell In[") else f"Cell of step '{self.spec.name}'"
        write_origin(self.source_directory, self.script, label, body_first_line(self.script_text))
        return path


def inside_notebook_or_workspace(text: str, notebook_dir: Path, workspace, what: str) -> Path:
    """A path a notebook names, relative to its folder, that stays in that folder or the workspace.

    Such paths come from a notebook file (its metadata may have been written by anyone) and are read
    or written, so ``..`` or an absolute path may not lead elsewhere. Checked on the text: symbolic
    links the user made inside those folders are theirs to follow."""
    path = Path(os.path.normpath(notebook_dir / text))
    roots = [Path(os.path.normpath(notebook_dir))]
    if workspace is not None:
        roots.append(Path(os.path.normpath(workspace.path)))
    if "\0" in text or not any(path == root or root in path.parents for root in roots):
        raise UserError(f"{what} {text!r} leads outside the notebook's folder and the workspace; give a path "
                        "relative to the notebook, inside one of them.")
    return path


def check_cell_names(spec: CellSpec) -> None:
    """Every name of a cell becomes a file name or an environment variable: check them before any is used."""
    check_step_name(spec.name)
    for name, _ in spec.inputs:
        check_data_name(f"Step '{spec.name}': input", name)
    for name in spec.outputs:
        check_data_name(f"Step '{spec.name}': output", name)
    for key in spec.params:
        check_param_name(key, f"Step '{spec.name}': parameter")


def environment_doc(text: str, notebook_dir: Path, workspace, step: str) -> dict:
    """``--environment``: a registered or curated name (``NAME[:VERSION]``), ``docker:IMAGE``, or a file
    relative to the notebook: a requirements .txt, a conda .yml, or a Python interpreter."""
    path = notebook_dir / text
    if not text.startswith("docker:") and path.is_file():
        inside_notebook_or_workspace(text, notebook_dir, workspace, f"Step '{step}': --environment")
    if text.startswith("docker:"):
        env = Environment.from_docker_image(text, text[len("docker:"):])
    elif path.is_file() and path.suffix == ".txt":
        env = Environment.from_pip_requirements(path.stem, str(path))
    elif path.is_file() and path.suffix in (".yml", ".yaml"):
        env = Environment.from_conda_specification(path.stem, str(path))
    elif path.is_file() and os.access(path, os.X_OK):
        env = Environment(path.name)
        env.python.interpreter_path = str(path.resolve())
    else:
        name, _, version = text.partition(":")
        env = Environment.get(workspace, name, version or None)
    return env.to_dict()


def make_cell_step(spec: CellSpec, cells_root: Path, notebook_dir: Path, external_data: dict, workspace) -> CellStep:
    """``external_data`` maps each ``NAME=SOURCE`` input to its data entry (resolved by the caller)."""
    check_cell_names(spec)  # before the name makes a folder and a file name
    check_body(spec.name, spec.body)
    if spec.source_dir:
        where = f"Step '{spec.name}': --source-dir"
        source_directory = inside_notebook_or_workspace(spec.source_dir, notebook_dir, workspace, where).resolve()
        if not source_directory.is_dir():
            raise UserError(f"--source-dir {spec.source_dir!r}: no such folder (relative to {notebook_dir}).")
        script = f".mlpipe_cells/cell_{spec.name}.py"
    else:
        source_directory = cells_root / spec.name
        script = f"cell_{spec.name}.py"
    hash_paths = [os.path.relpath(f, source_directory).replace(os.sep, "/")
                  for f in local_module_files(spec.body, notebook_dir)]
    data_docs = {n: {"kind": "pipeline_data", "is_directory": True} for n in spec.outputs}
    data_docs.update(external_data)
    step_doc = {
        "name": spec.name,
        "script": script,
        "source_directory": str(source_directory),
        "arguments": [],
        "inputs": [{"data": n} for n, _ in spec.inputs],
        "outputs": [{"data": n} for n in spec.outputs],
        "params": {k: {"param": k} for k in spec.params},
        "compute_target": spec.compute,
        "allow_reuse": spec.allow_reuse,
        "hash_paths": hash_paths,
    }
    if spec.cold:
        step_doc["environment_variables"] = {START_SETTING: "0"}
    if spec.environment:
        step_doc["environment"] = environment_doc(spec.environment, notebook_dir, workspace, spec.name)
    return CellStep(spec, source_directory, script, script_text(spec, notebook_dir), step_doc,
                    data_docs, {k: {"default": v} for k, v in spec.params.items()})
