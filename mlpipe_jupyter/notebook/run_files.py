"""A small file browser for a run: pick the run or one of its steps, walk its folders, preview a file
(a CSV's first rows as a table, an image, a text's first lines) and download it.

A run's files are what ``Run.get_file_names()`` lists (logs, ./outputs, uploaded files, logged
images); a step's outputs (PipelineData, OutputFileDatasetConfig) appear under ``step outputs/``.

Page contract (tests rely on it): a ``VBox`` of class ``mlpipe-files`` with a step ``Dropdown``
(``mlpipe-files-step``), the current folder (``mlpipe-files-path``), a ``Select`` of folders and
files (``mlpipe-files-list``) and the preview (``mlpipe-preview``: a table ``mlpipe-preview-table``,
an image ``mlpipe-preview-image`` or text ``mlpipe-preview-text``, and a link ``mlpipe-download``).
"""
from __future__ import annotations

import base64
import csv
import html
import itertools
import mimetypes
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import ipywidgets as widgets

try:
    import pandas as pd
except ImportError:  # the csv module reads the preview then
    pd = None

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.sdk.run import PipelineRun
from mlpipe_jupyter.tracking.report import status_word

OUTPUTS = "step outputs"
PREVIEW_ROWS = 20
PREVIEW_LINES = 60
PREVIEW_BYTES = 64 * 1024
DATA_URL_LIMIT = 8 * 1024 * 1024  # larger files are linked through the server (or named) instead
IMAGES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp", ".bmp": "bmp",
          ".svg": "svg+xml"}
UP_LABEL = "↑ .."
FOLDER_MARK = "▸"


def run_entries(run) -> dict[str, Path]:
    """Shown name -> file on this machine, for one run: its files, then its committed outputs."""
    entries = {name: run._safe_file(name) for name in run.get_file_names()}
    outputs = run.get_outputs() if hasattr(run, "get_outputs") else {}
    for name, output in outputs.items():
        root = output.get_port_data_reference().path
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root] if root.is_file() else []
        for f in files:
            rel = f.relative_to(root).as_posix() if root.is_dir() else f.name
            entries[f"{OUTPUTS}/{name}/{rel}"] = f
    return entries


def listing(entries: dict[str, Path], folder: str) -> tuple[list[str], list[str]]:
    """The sub-folders and files directly in ``folder`` ('' is the top), each sorted."""
    prefix = f"{folder}/" if folder else ""
    folders, files = set(), []
    for name in entries:
        if not name.startswith(prefix):
            continue
        head, sep, _ = name[len(prefix):].partition("/")
        if sep:
            folders.add(head)
        else:
            files.append(head)
    top = [OUTPUTS] if OUTPUTS in folders and not folder else []
    return top + sorted(folders - set(top)), sorted(files)


def size_text(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


# -- previews ---------------------------------------------------------------------------------------------------
def csv_preview(path: Path, rows: int = PREVIEW_ROWS) -> tuple[list[str], list[list[str]]]:
    """The header and first ``rows`` rows of a CSV (or TSV) file, as text."""
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    if pd is not None:
        frame = pd.read_csv(path, sep=sep, nrows=rows, dtype=str, keep_default_na=False)
        return [str(c) for c in frame.columns], frame.values.tolist()
    with open(path, newline="", encoding="utf-8") as f:
        lines = list(itertools.islice(csv.reader(f, delimiter=sep), rows + 1))
    return (lines[0], lines[1:]) if lines else ([], [])


def text_preview(path: Path, lines: int = PREVIEW_LINES) -> str | None:
    """The first lines of a text file; None for a binary one."""
    with open(path, "rb") as f:
        head = f.read(PREVIEW_BYTES)
    if b"\0" in head:
        return None
    return "\n".join(head.decode("utf-8", errors="replace").splitlines()[:lines])


def preview_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "table"
    if suffix in IMAGES:
        return "image"
    return "text"


def download_html(path: Path, name: str) -> str:
    """A Download link: the bytes themselves for a small file, the server's ``files/`` route for a large
    one under its root, else where the file is."""
    size = path.stat().st_size
    label = f"Download {html.escape(path.name)} ({size_text(size)})"
    if size <= DATA_URL_LIMIT:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = base64.b64encode(path.read_bytes()).decode()
        return (f"<a class='mlpipe-download' download='{html.escape(path.name)}' "
                f"href='data:{mime};base64,{data}'>{label}</a>")
    url = files_url(path)
    if url:
        return f"<a class='mlpipe-download' href='{html.escape(url)}' target='_blank'>{label}</a>"
    return (f"<span class='mlpipe-download'>{html.escape(name)} is {size_text(size)}, too large to send to the "
            f"page: it is at <code>{html.escape(str(path))}</code></span>")


def copy_button(path: Path, dest: Path, title: widgets.HTML, name: str) -> widgets.Button:
    """Copies a large file next to the notebook (where the server serves files), then links it there."""
    button = widgets.Button(description="Copy next to the notebook", icon="copy",
                            tooltip=f"Copy to {dest} and link it", layout=widgets.Layout(width="auto"))
    button.add_class("mlpipe-copy-here")

    def copy(_):
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        title.value = f"<b>{html.escape(name)}</b> &middot; {download_html(dest, name)}{_LINK_STYLE}"
        button.disabled = True

    button.on_click(copy)
    return button


def files_url(path: Path) -> str | None:
    """The ``files/`` URL of ``path`` on a running Jupyter server whose root holds it (hidden folders,
    as a workspace's ``.mlpipe``, are not served by default: None for those)."""
    try:
        from jupyter_server.serverapp import list_running_servers  # only there when Jupyter Server is
    except ImportError:
        return None
    real = Path(os.path.realpath(path))
    for server in list_running_servers():
        root = Path(os.path.realpath(server.get("root_dir") or server.get("notebook_dir") or "/"))
        try:
            rel = real.relative_to(root)
        except ValueError:
            continue
        if any(part.startswith(".") for part in rel.parts):
            return None
        return f"{server.get('base_url', '/')}files/{quote(rel.as_posix())}"
    return None


def preview_widget(path: Path, name: str, copy_dir: Path | None = None) -> widgets.VBox:
    """What a file looks like: a table, an image or text, and a Download link (for a large file the
    server cannot serve from where it is, a button copying it into ``copy_dir`` to link it there)."""
    kind = preview_kind(path)
    body: widgets.Widget
    if kind == "table":
        try:
            header, rows = csv_preview(path)
        except (ValueError, UnicodeDecodeError, csv.Error):  # pandas' ParserError is a ValueError
            kind = "text"
        else:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
            body = widgets.HTML(f"<table class='mlpipe-preview-table'><thead><tr>{head}</tr></thead>"
                                f"<tbody>{cells}</tbody></table>{_PREVIEW_STYLE}")
    if kind == "image":
        body = widgets.Image(value=path.read_bytes(), format=IMAGES[path.suffix.lower()],
                             layout=widgets.Layout(max_width="480px", max_height="360px", object_fit="contain",
                                                   align_self="flex-start", width="auto", height="auto"))
        body.add_class("mlpipe-preview-image")
    elif kind == "text":
        text = text_preview(path)
        shown = "(a binary file)" if text is None else text
        body = widgets.HTML(f"<pre class='mlpipe-preview-text'>{html.escape(shown)}</pre>{_PREVIEW_STYLE}")
    title = widgets.HTML(f"<b>{html.escape(name)}</b> &middot; {download_html(path, name)}{_LINK_STYLE}")
    children = [title, body]
    if copy_dir is not None and path.stat().st_size > DATA_URL_LIMIT and files_url(path) is None:
        children.insert(1, copy_button(path, copy_dir / name, title, name))
    box = widgets.VBox(children, layout=widgets.Layout(min_width="0", flex="1 1 auto"))
    box.add_class("mlpipe-preview")
    return box


# -- the browser --------------------------------------------------------------------------------------------------
class RunFiles:
    """The files of a run and, for a pipeline run, of each of its steps."""

    def __init__(self, run):
        self.run = run
        self.runs = {r.id: r for r in ([*run.steps_in_plan_order(), run] if isinstance(run, PipelineRun) else [run])}
        self.folder = ""
        self._entries: dict[str, Path] = {}
        options = [(self._label(r), r.id) for r in self.runs.values()]
        self.step = widgets.Dropdown(options=options, value=options[0][1], description="files of",
                                     layout=widgets.Layout(width="360px"))
        self.step.add_class("mlpipe-files-step")
        self.path = widgets.HTML()
        self.path.add_class("mlpipe-files-path")
        self.list = widgets.Select(options=[], rows=14, layout=widgets.Layout(width="300px"))
        self.list.add_class("mlpipe-files-list")
        self.preview = widgets.VBox([widgets.HTML("<i>Choose a file to preview it.</i>")],
                                    layout=widgets.Layout(flex="1 1 auto", min_width="0"))
        self.step.observe(lambda change: self._load(change["new"]), "value")
        self.list.observe(self._picked, "value")
        self.widget = widgets.VBox([widgets.HBox([self.step, self.path], layout=widgets.Layout(align_items="center")),
                                    widgets.HBox([self.list, self.preview],
                                                 layout=widgets.Layout(grid_gap="12px", align_items="flex-start"))])
        self.widget.add_class("mlpipe-files")
        self.open_run(self.step.value)

    def _label(self, run) -> str:
        row = run._row
        what = "the pipeline run" if isinstance(run, PipelineRun) else f"step {run.name}"
        word = status_word(row["status"], bool(row.get("reused_from")))
        return f"{what} ({word})" if run is not self.run or not isinstance(run, PipelineRun) else what

    # -- navigation ---------------------------------------------------------------------------------------
    def open_run(self, run_id: str) -> None:
        if run_id not in self.runs:
            raise UserError(f"No run {run_id!r} here (runs: {', '.join(self.runs)}).")
        if self.step.value != run_id:
            self.step.value = run_id  # the observer loads it
        else:
            self._load(run_id)

    def _load(self, run_id: str) -> None:
        self._entries = run_entries(self.runs[run_id])
        self.open_folder("")
        self.preview.children = [widgets.HTML("<i>Choose a file to preview it.</i>")]

    def open_folder(self, folder: str) -> None:
        self.folder = folder
        folders, files = listing(self._entries, folder)
        options = [(UP_LABEL, ("up", folder))] if folder else []  # values differ from folder to folder
        options += [(f"{FOLDER_MARK} {name}/", ("folder", f"{folder}/{name}" if folder else name)) for name in folders]
        for name in files:
            key = f"{folder}/{name}" if folder else name
            options.append((f"{name}   ({size_text(self._entries[key].stat().st_size)})", ("file", key)))
        self.list.unobserve(self._picked, "value")
        self.list.options = options
        self.list.value = None
        self.list.observe(self._picked, "value")
        where = html.escape(folder or "/")
        empty = "" if options else " &middot; <i>no files</i>"
        self.path.value = f"<code>{where}</code>{empty}"

    def open_file(self, name: str) -> widgets.VBox:
        if name not in self._entries:
            raise UserError(f"No file {name!r} in this run (see get_file_names()).")
        copy_dir = Path.cwd() / "run-files" / self.step.value
        self.preview.children = [preview_widget(self._entries[name], name, copy_dir)]
        return self.preview.children[0]

    def _picked(self, change):
        value = change["new"]
        if value is None:
            return
        kind, key = value
        if kind == "up":
            self.open_folder(self.folder.rpartition("/")[0])
        elif kind == "folder":
            self.open_folder(key)
        else:
            self.open_file(key)

    @property
    def names(self) -> list[str]:
        """The shown names of the chosen run's files."""
        return list(self._entries)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_()
        bundle["text/plain"] = "\n".join(self.names) or "No files."
        return bundle


_PREVIEW_STYLE = """<style>
.mlpipe-preview-table { border-collapse: collapse; font-size: 12px; }
.mlpipe-preview-table th, .mlpipe-preview-table td { padding: 2px 8px; border-bottom: 1px solid var(--jp-border-color2, #ddd);
  text-align: left; }
.mlpipe-preview-text { max-height: 24em; overflow: auto; font-size: 11px; margin: 0; }
</style>"""

_LINK_STYLE = """<style>
a.mlpipe-download { color: var(--jp-content-link-color, #1976d2); text-decoration: underline; }
</style>"""
