"""Notebook integration: magics, monitor widget, designer canvas."""


def load_notebook_pipeline(workspace, notebook_path, source="auto"):
    """The ``Pipeline`` a notebook's ``%%step`` cells (or its saved metadata) describe."""
    from mlpipe_jupyter.notebook.notebook_meta import load_notebook_pipeline as load

    return load(workspace, notebook_path, source)
