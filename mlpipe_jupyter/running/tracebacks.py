"""A failed step's Python traceback, as the user wrote the code: one readable error per failed step.

A step runs a copy of its snapshot in a scratch folder that is gone once it ends, and a ``%%step``
cell runs as a generated script (a preamble, then the cell body). So the raw traceback points at
paths nobody can open and at line numbers the user never saw. ``map_traceback`` (a pure function)
takes the log's last traceback and rewrites each frame: a file of the working copy becomes the same
file in the step's source folder; a generated script becomes the cell it came from (``Cell In[3],
line 4``, as IPython names cells); frames of the generated preamble and of this package are dropped.

A generated script says where it came from in an origin file beside it, kept under the source
folder's ``.mlpipe/`` (which snapshots always leave out, so a new execution count never causes a
rerun): ``.mlpipe/origin/<script>.json`` holding ``{"label": "Cell In[3]", "first_line": 27}``
(script line 27 is the cell's line 1).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

START = "Traceback (most recent call last):"
CHAINS = ("During handling of the above exception, another exception occurred:",
          "The above exception was the direct cause of the following exception:")
_FRAME = re.compile(r'^(\s*)File "(?P<path>[^"]+)", line (?P<line>\d+)(?P<rest>.*)$')
_OWN_PACKAGE = str(Path(__file__).resolve().parent.parent)  # mlpipe_jupyter/
READ_BYTES = 256 * 1024  # a traceback is at the end of a log: its last part is enough


def origin_path(source_dir: Path, script: str) -> Path:
    """Where a generated script's origin file lives (under ``.mlpipe/``, outside every snapshot)."""
    return Path(source_dir) / ".mlpipe" / "origin" / f"{script}.json"


def write_origin(source_dir: Path, script: str, label: str, first_line: int) -> None:
    path = origin_path(source_dir, script)
    text = json.dumps({"label": label, "first_line": first_line})
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def read_origin(source_dir: Path, script: str) -> dict | None:
    try:
        data = json.loads(origin_path(source_dir, script).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("label"), str) and isinstance(data.get("first_line"), int):
        return data
    return None


def last_traceback(lines: list[str]) -> list[str]:
    """The log's last Python traceback (with the tracebacks it was chained to), up to its exception line;
    empty when there is none."""
    starts = [i for i, ln in enumerate(lines) if ln.rstrip() == START]
    if not starts:
        return []
    k = len(starts) - 1
    while k > 0:  # "During handling of the above exception..." joins it to the traceback before
        before = [ln for ln in lines[starts[k - 1]:starts[k]] if ln.strip()]
        if len(before) >= 2 and before[-1].strip() in CHAINS:
            k -= 1
        else:
            break
    block = lines[starts[k]:]
    # our own notes written after the step ended are not part of it
    return [ln for ln in block if not ln.startswith("mlpipe: ")]


def map_traceback(lines: list[str], work_dir: str | tuple[str, ...], source_dir: str, script: str,
                  origin: dict | None = None, drop_dirs: tuple[str, ...] = (_OWN_PACKAGE,)) -> list[str]:
    """``lines`` (a traceback) with its frames pointing at what the user wrote (see the module's doc).

    ``work_dir`` is the folder the step ran in (or its names: on the host and in a container),
    ``source_dir`` the step's source folder, ``script`` its script (relative to both), ``origin`` the
    generated script's origin (``read_origin``)."""
    names = (work_dir,) if isinstance(work_dir, (str, os.PathLike)) else work_dir
    works = [str(w).rstrip("/") + "/" for w in names]
    work = works[0]
    out: list[str] = []
    skipping = False  # inside a dropped frame: its code lines go too
    for line in lines:
        m = _FRAME.match(line)
        if m is None:
            if skipping and line.startswith("    "):
                continue
            skipping = False
            out.append(line)
            continue
        indent, path, number, rest = m.group(1), m.group("path"), int(m.group("line")), m.group("rest")
        if not path.startswith(("/", "<")) and not re.match(r"^[A-Za-z]:[\\/]", path):
            path = work + path  # run by a relative name: relative to the working folder
        skipping = False
        under = next((w for w in works if path.startswith(w)), None)
        if under is not None:
            rel = path[len(under):]
            if rel == script and origin is not None:
                cell_line = number - origin["first_line"] + 1
                if cell_line < 1:  # the generated preamble
                    skipping = True
                    continue
                out.append(f"{indent}{origin['label']}, line {cell_line}{rest}")
                continue
            out.append(f'{indent}File "{Path(source_dir) / rel}", line {number}{rest}')
            continue
        if any(path.startswith(d.rstrip("/") + "/") for d in drop_dirs):
            skipping = True
            continue
        out.append(line)
    return out


def step_traceback(log_path: Path, work_dir, source_dir: Path | None, script: str) -> str:
    """The mapped last traceback of a step's log file, or "" when the log holds none."""
    try:
        with open(log_path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - READ_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = last_traceback(text.splitlines())
    if not lines:
        return ""
    if source_dir is None:  # a snapshot kept without its folder (a published pipeline's): name the file only
        return "\n".join(map_traceback(lines, work_dir, ".", script)).rstrip()
    origin = read_origin(source_dir, script)
    return "\n".join(map_traceback(lines, work_dir, str(source_dir), script, origin)).rstrip()
