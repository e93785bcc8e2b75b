"""External inputs (datastore paths and datasets): where they are on this machine, and their fingerprint.

They come as a pipeline document's data entries (``data_reference`` and ``dataset``, see
model/document.py). Local data is used in place and fingerprinted by content (with the stat cache). Data on other fsspec
file systems is fingerprinted from the file system's own file identity (``ukey``: size, mtime, ETag)
and downloaded once per fingerprint into the workspace cache.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from mlpipe_jupyter.data.datastore import Datastore
from mlpipe_jupyter.data.fingerprint import path_fingerprint
from mlpipe_jupyter.data.partitions import glob_base, has_glob
from mlpipe_jupyter.data.registered import registered_dataset
from mlpipe_jupyter.errors import UserError


@dataclass
class ExternalInput:
    path: Path
    fingerprint: str
    description: str
    dataset_kind: str | None = None  # "file" / "tabular" for datasets
    dataset_options: dict | None = None


def _datastore_source(workspace, datastore, path_on_datastore, what, missing_ok=False) -> tuple[Path, str]:
    workspace = workspace or datastore.workspace  # a dataset read outside a pipeline knows no workspace
    if has_glob(path_on_datastore):
        return _glob_source(workspace, datastore.fs, datastore.resolve(path_on_datastore),
                            datastore.resolve(glob_base(path_on_datastore)), datastore.on_local_disk,
                            f"'{path_on_datastore}' on datastore '{datastore.name}'", what, datastore)
    full = datastore.resolve(path_on_datastore)
    exists = os.path.exists(full) if datastore.is_local else datastore.fs.exists(full)
    if not exists and missing_ok:
        return _missing_path(workspace, datastore, path_on_datastore, what)
    if datastore.is_local:
        if not exists:
            raise UserError(f"{what}: '{path_on_datastore}' does not exist on datastore '{datastore.name}' ({full}).")
        return Path(full), path_fingerprint(workspace._store, Path(full))
    fs = datastore.fs
    if not exists:
        raise UserError(f"{what}: '{path_on_datastore}' does not exist on datastore '{datastore.name}'.")
    files = [full] if fs.isfile(full) else sorted(fs.find(full))
    h = hashlib.sha256()
    for f in files:
        h.update(f[len(full):].encode() + b"\0" + str(fs.ukey(f)).encode() + b"\n")
    fingerprint = h.hexdigest()
    cache = workspace.folder / "cache" / "datastores" / datastore.name / fingerprint[:32]
    target = cache / (posixpath.basename(full.rstrip("/")) or "data")
    if not target.exists():
        tmp = _private_partial(cache)
        try:
            dest = tmp / target.name
            if fs.isfile(full):
                fs.get_file(full, str(dest))
            else:
                dest.mkdir()
                for f in files:
                    out = dest / f[len(full):].lstrip("/")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    fs.get_file(f, str(out))
            _publish(tmp, cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target, fingerprint


def _glob_source(workspace, fs, pattern, base, local, shown, what, datastore=None) -> tuple[Path, str]:
    """The files a glob matches, linked (local) or downloaded (elsewhere) into a cached folder that keeps
    their layout below ``base``; fingerprinted by their paths and contents (or the file system's identity)."""
    files = sorted(f for f in fs.glob(pattern) if fs.isfile(f))
    if not files:
        raise UserError(f"{what}: {shown} matches no files.")
    prefix = base.rstrip("/") + "/"
    store = workspace._store if workspace else None
    h = hashlib.sha256()
    for f in files:
        if datastore is not None and local:
            datastore._check_inside(f, f)
        ident = path_fingerprint(store, Path(f)) if local else str(fs.ukey(f))
        h.update(f[len(prefix):].encode() + b"\0" + ident.encode() + b"\n")
    fingerprint = h.hexdigest()
    cache_root = workspace.folder / "cache" if workspace else Path(tempfile.gettempdir()) / "mlpipe-globs"
    cache = cache_root / "globs" / fingerprint[:32]
    target = cache / (posixpath.basename(base.rstrip("/")) or "data")
    if not target.exists():
        tmp = _private_partial(cache)
        try:
            for f in files:
                dest = tmp / target.name / f[len(prefix):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                if local:
                    os.symlink(f, dest)
                else:
                    fs.get_file(f, str(dest))
            _publish(tmp, cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target, fingerprint


def _missing_path(workspace, datastore, path_on_datastore, what) -> tuple[Path, str]:
    """A datastore path that does not exist yet, as Azure mounts it: an empty folder (read-only, shared),
    said once as a warning; its fingerprint names the path, so the step reruns once data is there."""
    warnings.warn(f"{what}: '{path_on_datastore}' does not exist on datastore '{datastore.name}'; the step "
                  "gets an empty folder, as Azure ML mounts a missing path.", UserWarning, stacklevel=2)
    empty = workspace.folder / "cache" / "empty"
    if not empty.is_dir():
        empty.mkdir(parents=True, exist_ok=True)
        os.chmod(empty, 0o555)
    fingerprint = hashlib.sha256(f"missing\0{datastore.name}\0{path_on_datastore}".encode()).hexdigest()
    return empty, fingerprint


def _private_partial(final: Path) -> Path:
    """A download folder of this process only: two processes may fetch the same data at once."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=final.name + ".partial-", dir=final.parent))


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished folder into place; if another process got there first, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.exists():
            raise


def _dataset_sources(workspace, sources: list, what) -> list[tuple[Path, str]]:
    out = []
    for src in sources:
        if "datastore" in src:
            ds = src.get("_ds") or Datastore(workspace, src["datastore"])
            out.append(_datastore_source(workspace, ds, src["path"], what))
        elif "path" in src and has_glob(src["path"]):
            from fsspec.implementations.local import LocalFileSystem

            out.append(_glob_source(workspace, LocalFileSystem(), src["path"], glob_base(src["path"]), True,
                                    f"'{src['path']}'", what))
        elif "path" in src:
            p = Path(src["path"])
            if not p.exists():
                raise UserError(f"{what}: local path '{p}' does not exist.")
            out.append((p, path_fingerprint(workspace._store if workspace else None, p)))
        else:
            import fsspec

            fs, path = fsspec.core.url_to_fs(src["url"])
            if not fs.exists(path):
                raise UserError(f"{what}: '{src['url']}' does not exist.")
            cache = {"cache_storage": str(workspace.folder / "cache" / "urls")} if workspace else {}
            local = fsspec.open_local("simplecache::" + src["url"], simplecache=cache)
            out.append((Path(local), hashlib.sha256(str(fs.ukey(path)).encode()).hexdigest()))
    return out


def _link_tree(src: Path, dest: Path) -> None:
    """Real folders with links to the files, so a plain ``os.walk`` of the merged data sees every file."""
    if src.is_file():
        os.symlink(src, dest)
        return
    for dirpath, _, filenames in os.walk(src, followlinks=True):
        here = dest / os.path.relpath(dirpath, src)
        here.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            os.symlink(os.path.join(dirpath, name), here / name)


def dataset_definition(workspace, entry: dict) -> tuple[str, dict, str]:
    """(kind, definition, label) of a dataset entry: a registered one by name and version, else its own."""
    if entry.get("name") and entry.get("version") is not None and not entry.get("sources"):
        record = registered_dataset(workspace._store, entry["name"], entry["version"])
        return record["kind"], record["definition"], f"dataset {entry['name']}:{record['version']}"
    label = f"dataset {entry['name']}:{entry.get('version')}" if entry.get("name") else "dataset"
    return entry.get("dataset_type", "file"), entry, label


def dataset_local_paths(workspace, definition: dict, what: str = "Dataset") -> list[str]:
    """Where a dataset's files are on this machine (downloaded first when they are elsewhere)."""
    return [str(p) for p, _ in _dataset_sources(workspace, definition.get("sources") or [], what)]


def source_root(src: dict) -> str:
    """The path on its source (datastore path, local path or URL) of the folder or file a source gives."""
    if "datastore" in src or "path" in src:
        return glob_base((src.get("path") or "").replace("\\", "/")).rstrip("/")
    return src["url"]


def dataset_files(workspace, sources: list, what: str = "Dataset") -> list[tuple[str, str]]:
    """Each file of a dataset, in order: (where it is on this machine, its path on its source)."""
    out = []
    for src, (local, _) in zip(sources, _dataset_sources(workspace, sources, what)):
        root = source_root(src)
        if local.is_file():
            out.append((str(local), root))
            continue
        for dirpath, _, names in sorted(os.walk(local, followlinks=True)):
            for name in sorted(names):
                rel = os.path.relpath(os.path.join(dirpath, name), local).replace(os.sep, "/")
                out.append((os.path.join(dirpath, name), posixpath.join(root, rel)))
    return out


def _with_partition_roots(options: dict, sources: list, local: list[Path]) -> dict:
    """A partitioned dataset's options with where its input folder's parts are on their sources."""
    if not options.get("partition_format"):
        return options
    if len(sources) == 1:
        roots = {"": source_root(sources[0])}
    else:
        roots = {f"{i:03d}_{p.name}": source_root(src) for i, (src, p) in enumerate(zip(sources, local))}
    return {**options, "partition_roots": roots}


def resolve_external(workspace, entry: dict, what: str, missing_ok: bool = False) -> ExternalInput:
    """Local path and fingerprint of a ``data_reference`` or ``dataset`` entry; a UserError naming ``what``.
    With ``missing_ok``, a datastore path that does not exist is an empty folder (see ``_missing_path``)."""
    kind = entry.get("kind")
    if kind == "data_reference":
        datastore = entry.get("_ds") or Datastore(workspace, entry.get("datastore"))
        path, fp = _datastore_source(workspace, datastore, entry.get("path"), what, missing_ok=missing_ok)
        return ExternalInput(path, fp, f"{datastore.name}:{entry.get('path') or ''}")
    if kind == "dataset":
        dataset_kind, definition, label = dataset_definition(workspace, entry)
        sources = _dataset_sources(workspace, definition.get("sources") or [], what)
        if not sources:
            raise UserError(f"{what}: the dataset has no files.")
        if len(sources) == 1:
            path, fp = sources[0]
        else:
            fp = hashlib.sha256("".join(f for _, f in sources).encode()).hexdigest()
            path = workspace.folder / "cache" / "datasets" / fp[:32]
            if not path.exists():
                tmp = _private_partial(path)
                try:
                    for i, (p, _) in enumerate(sources):
                        _link_tree(p, tmp / f"{i:03d}_{p.name}")
                    _publish(tmp, path)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        options = _with_partition_roots(definition.get("options") or {}, definition.get("sources") or [],
                                        [p for p, _ in sources])
        return ExternalInput(Path(path), fp, label, "tabular" if dataset_kind == "tabular" else "file", options)
    raise UserError(f"{what}: data of kind {kind!r} is not external data.")
