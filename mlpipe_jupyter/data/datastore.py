"""Datastores: named places for data, local folders or any fsspec file system.

Storage options that look like secrets (keys, tokens, passwords, also nested) and credentials in the
URL (a password, a SAS ``sig=``) are kept in this process only and never written to the store; a later
process gets them from the backend's usual environment variables or credential files, or by
registering the datastore again.
"""
from __future__ import annotations

import os
import posixpath
import re
import shutil
from pathlib import Path

from mlpipe_jupyter.errors import DatastorePathError, UserError
from mlpipe_jupyter.secrets import MASK, looks_secret
from mlpipe_jupyter.model.names import check_registry_name

DEFAULT_DATASTORE = "workspaceblobstore"
_session_secrets: dict[tuple[str, str], dict] = {}


def _holds_secret(key, value) -> bool:
    """A secret-looking option name, also nested (``client_kwargs={"aws_secret_access_key": ...}``)."""
    if looks_secret(key):
        return True
    if isinstance(value, dict):
        return any(_holds_secret(k, v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds_secret(None, v) for v in value)
    return False


_URL_KEY = "\0url"  # where the session keeps a URL whose stored copy had its credentials masked


def _masked_url(url: str) -> str:
    """The URL without a password or secret-looking query values (a SAS ``sig=``, ``token=``...)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    netloc = parts.netloc
    if password:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(_secret_query_key(k) for k, _ in query):
        query = [(k, MASK if _secret_query_key(k) else v) for k, v in query]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
    return urlunsplit(parts._replace(netloc=netloc)) if password else url


def _secret_query_key(key: str) -> bool:
    return looks_secret(key) or key.lower() == "sig"  # a SAS signature


class Datastore:
    """A registered datastore of a workspace (``Datastore(ws, name)`` looks one up): where its files are,
    and copying files in and out. The SDK's ``Datastore`` adds Azure's methods that return data
    references; ``workspace`` is anything with the workspace's store, path and name."""

    def __init__(self, workspace, name: str | None = None):
        store = workspace._store
        if name is None:  # as in Azure ML: no name means the workspace's default datastore
            name = store.default_datastore_name() or DEFAULT_DATASTORE
        record = store.datastore(name)
        if record is None:
            known = ", ".join(store.datastore_names()) or "none"
            raise UserError(f"No datastore named '{name}' is registered in workspace '{workspace.name}' (known: {known}).")
        self.workspace = workspace
        self.name = name
        self.datastore_type = record["kind"]
        config = record["config"]
        if not isinstance(config.get("url"), str):
            raise UserError(f"Datastore '{name}' is damaged in the workspace database (it has no URL); register it "
                            "again with overwrite=True.")
        self.url = config["url"]
        self._public_options = config.get("storage_options", {})
        self._secret_names = config.get("secret_options", [])
        self._fs = None
        self._root = None

    @classmethod
    def get(cls, workspace, datastore_name: str) -> "Datastore":
        return cls(workspace, datastore_name)

    @classmethod
    def get_default(cls, workspace) -> "Datastore":
        return cls(workspace)

    # -- registration -------------------------------------------------------------------------------
    @classmethod
    def register_local(cls, workspace, name: str, path, overwrite: bool = False) -> "Datastore":
        check_registry_name("Datastore", name)  # before its folder is made
        path = Path(path)
        if not path.is_absolute():
            path = (Path(workspace.path) / path).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls._register(workspace, name, "local", str(path), {}, overwrite)

    @classmethod
    def register_fsspec(cls, workspace, name: str, url: str, overwrite: bool = False, **storage_options) -> "Datastore":
        import fsspec

        check_registry_name("Datastore", name)
        try:
            fsspec.core.url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as e:
            raise UserError(f"Datastore '{name}': fsspec cannot open {_masked_url(url)!r}: {e}") from None
        return cls._register(workspace, name, "fsspec", url, storage_options, overwrite)

    @classmethod
    def _register(cls, workspace, name, kind, url, storage_options, overwrite):
        secret = {k: v for k, v in storage_options.items() if _holds_secret(k, v)}
        public = {k: v for k, v in storage_options.items() if k not in secret}
        stored_url = _masked_url(url)
        config = {"url": stored_url, "storage_options": public, "secret_options": sorted(secret)}
        if stored_url != url:
            secret[_URL_KEY] = url
        if not workspace._store.register_datastore(name, kind, config, overwrite):
            raise UserError(f"A datastore named '{name}' is already registered with another location; "
                            "pass overwrite=True to replace it.")
        if secret:
            _session_secrets[(str(workspace.path), name)] = secret
        else:
            _session_secrets.pop((str(workspace.path), name), None)
        return cls(workspace, name)

    # -- file system --------------------------------------------------------------------------------
    @property
    def fs(self):
        if self._fs is None:
            import fsspec

            options = dict(self._public_options)
            options.update(_session_secrets.get((str(self.workspace.path), self.name), {}))
            url = options.pop(_URL_KEY, None)
            if url is None and MASK in self.url:
                raise UserError(
                    f"Datastore '{self.name}' was registered with credentials in its URL, which are kept only by "
                    "the process that registered it. Register it again here, or pass the credentials as storage "
                    "options or through the storage's usual environment variables.")
            self._fs, root = fsspec.core.url_to_fs(url or self.url, **options)
            self._root = root.rstrip("/") or "/"
        return self._fs

    @property
    def is_local(self) -> bool:
        return self.datastore_type == "local"

    @property
    def on_local_disk(self) -> bool:
        """A local folder, registered as such or through fsspec (``file://``): symbolic links can lead out."""
        from fsspec.implementations.local import LocalFileSystem  # fsspec loads only when a datastore is used

        return self.is_local or isinstance(self.fs, LocalFileSystem)

    def _check_inside(self, full: str, path_on_datastore) -> None:
        """Refuse a path on the local disk that leads outside the datastore's folder through a symbolic link."""
        real_root = os.path.realpath(self._root)
        real = os.path.realpath(full)
        if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
            raise DatastorePathError(
                f"Path {path_on_datastore!r} on datastore '{self.name}' leads outside it (through a symbolic link).")

    def resolve(self, path_on_datastore: str | None) -> str:
        """The full path of a datastore-relative path; refuses anything that would leave the datastore."""
        self.fs  # noqa: B018 - sets _root
        rel = (path_on_datastore or "").replace("\\", "/")
        if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
            raise DatastorePathError(
                f"Path {path_on_datastore!r} on datastore '{self.name}' is absolute; give a path relative to the datastore.")
        norm = posixpath.normpath(rel) if rel else ""
        if norm == ".." or norm.startswith("../"):
            raise DatastorePathError(f"Path {path_on_datastore!r} escapes datastore '{self.name}'.")
        full = self._root if norm in ("", ".") else posixpath.join(self._root, norm)
        if self.on_local_disk:
            self._check_inside(full, path_on_datastore)
        return full

    def local_path(self, path_on_datastore: str | None) -> Path:
        if not self.is_local:
            raise UserError(f"Datastore '{self.name}' is not on the local disk.")
        return Path(self.resolve(path_on_datastore))

    def exists(self, path_on_datastore: str | None) -> bool:
        return self.fs.exists(self.resolve(path_on_datastore))

    # -- copying in and out -----------------------------------------------------------------------------
    def put_files(self, files, relative_root=None, target_path=None, overwrite=False, show_progress=True) -> None:
        """Files into ``target_path``, under their path relative to ``relative_root`` (else their name)."""
        for f in files:
            f = Path(f)
            if not f.is_file():
                raise UserError(f"upload_files: {str(f)!r} is not a file.")
            rel = os.path.relpath(f, relative_root) if relative_root else f.name
            if rel.startswith(".."):
                raise UserError(f"upload_files: {str(f)!r} is not under relative_root {str(relative_root)!r}.")
            dest = self.resolve(posixpath.join(target_path or "", rel.replace(os.sep, "/")))
            self._put(str(f), dest, overwrite, show_progress)

    def put_folder(self, src_dir, target_path=None, overwrite=False, show_progress=True) -> None:
        """A folder's files into ``target_path``, keeping their relative paths."""
        src_dir = Path(src_dir)
        if not src_dir.is_dir():
            raise UserError(f"upload: {str(src_dir)!r} is not a folder.")
        for f in sorted(p for p in src_dir.rglob("*") if p.is_file()):
            rel = f.relative_to(src_dir).as_posix()
            self._put(str(f), self.resolve(posixpath.join(target_path or "", rel)), overwrite, show_progress)

    def _put(self, src, dest, overwrite, show_progress):
        fs = self.fs
        if fs.exists(dest) and not overwrite:
            if show_progress:
                print(f"Skipping {dest}: it exists (overwrite=False)")
            return
        fs.makedirs(posixpath.dirname(dest) or "/", exist_ok=True)
        if self.is_local:
            shutil.copyfile(src, dest)
        else:
            fs.put_file(src, dest)
        if show_progress:
            print(f"Uploaded {src} -> {self.name}:{dest[len(self._root):].lstrip('/')}")

    def download(self, target_path, prefix=None, overwrite=False, show_progress=True) -> int:
        """Copy files under ``prefix`` into ``target_path`` keeping their datastore-relative paths."""
        fs = self.fs
        base = self.resolve(prefix)
        count = 0
        if not fs.exists(base):
            return 0
        paths = [base] if fs.isfile(base) else fs.find(base)
        if self.on_local_disk:  # links inside the folder, found by the walk; checked before anything is copied
            for src in paths:
                self._check_inside(src, src[len(self._root):].lstrip("/"))
        for src in paths:
            rel = src[len(self._root):].lstrip("/")
            dest = Path(target_path) / rel
            if dest.exists() and not overwrite:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(src, str(dest))
            count += 1
            if show_progress:
                print(f"Downloaded {self.name}:{rel}")
        return count

    def __repr__(self):
        return f"Datastore(name={self.name!r}, type={self.datastore_type!r}, url={self.url!r})"

    def __eq__(self, other):
        return isinstance(other, Datastore) and other.name == self.name and other.workspace.path == self.workspace.path

    def __hash__(self):
        return hash((self.name, str(self.workspace.path)))
