"""A notebook's pipeline from its file: its ``%%step`` cells, or the copy saved in its metadata.

``load_notebook_pipeline`` reads the cells first. The cells are what the user saved and sees, they
are always in the file, and replaying them with the magics' own parser gives exactly the steps
(and script files, so the same reuse keys) a kernel would record. The metadata copy, written by
``%pipeline save-notebook``, is the fallback for a notebook whose pipeline was not built from cells
(for example one loaded from a file); it can be stale, since the kernel writes it, not the editor.
"""
from __future__ import annotations

import os
from pathlib import Path

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.notebook.arguments import MagicUsageError, parse_pipeline_line, parse_step_line
from mlpipe_jupyter.notebook.state import NotebookPipeline

METADATA_KEY = "mlpipe"


def _read(path):
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise UserError(f"Notebook '{path}' does not exist.")
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as e:  # noqa: BLE001 - any parse error is one message
        raise UserError(f"Notebook '{path}' could not be read: {e}") from None


def save_notebook_metadata(state, notebook_path) -> Path:
    """Write the pipeline into the notebook file's metadata (atomically; the cells are untouched)."""
    import nbformat

    path = Path(notebook_path)
    nb = _read(path)
    nb.metadata[METADATA_KEY] = state.to_metadata()
    tmp = path.with_name(f".{path.name}.mlpipe-tmp")
    nbformat.write(nb, str(tmp))
    os.replace(tmp, path)
    return path


def read_notebook_metadata(notebook_path) -> dict | None:
    return _read(notebook_path).metadata.get(METADATA_KEY)


def _step_cells(nb):
    """(kind, line, body) for each pipeline magic in the notebook, in order."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        first, _, body = source.lstrip("\n").partition("\n")
        if first.startswith("%%step"):
            yield "step", first[len("%%step"):], body
            continue
        for line in source.splitlines():
            text = line.strip()
            if text.startswith("%pipeline "):
                yield "pipeline", text[len("%pipeline "):], None


def replay_cells(state, nb, default_compute="local") -> int:
    """Record the notebook's ``%%step`` cells (and its ``%pipeline load/remove/clear`` lines) in order."""
    count = 0
    for kind, line, body in _step_cells(nb):
        try:
            if kind == "step":
                spec, _run_now = parse_step_line(line, body, default_compute)
                state.record(spec)
                count += 1
                continue
            args = parse_pipeline_line(line)
        except MagicUsageError as e:
            raise UserError(f"Notebook cell `{'%%step' if kind == 'step' else '%pipeline'}{line}`: {e}") from None
        if args.command == "load":
            state.load_file(args.path)
        elif args.command == "remove":
            state.remove(args.step)
        elif args.command == "clear":
            state.clear()
    return count


def notebook_state(workspace, notebook_path, source: str = "auto"):
    """The notebook's pipeline state; ``source`` is ``auto`` (cells, else metadata), ``cells`` or ``metadata``."""
    path = Path(notebook_path).resolve()
    nb = _read(path)
    state = NotebookPipeline(workspace, path.parent, path.name)
    if source in ("auto", "cells"):
        replay_cells(state, nb)
        if state.steps or source == "cells":
            return state
    meta = nb.metadata.get(METADATA_KEY)
    if meta is None:
        raise UserError(f"Notebook '{path}' has no %%step cells and no saved pipeline in its metadata.")
    state.load_metadata(meta)
    return state


def load_notebook_pipeline(workspace, notebook_path, source: str = "auto"):
    """The ``Pipeline`` a notebook records, for running it headless (``mlpipe run NOTEBOOK.ipynb``)."""
    return notebook_state(workspace, notebook_path, source).build()
