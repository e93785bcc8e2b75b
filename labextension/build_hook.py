"""Builds the JupyterLab extension while the Python package is built (hatch-jupyter-builder calls ``build``).

The build (``npm ci`` and webpack, minutes) runs only when the extension's sources changed: the built
extension is kept in a cache folder under the hash of its sources (``~/.cache/mlpipe/labextension``,
or ``MLPIPE_LABEXTENSION_CACHE``), and an unchanged source tree, in this clone or a fresh one, takes
it from there in a second.

Without node/npm, or when the build fails, the Python package still builds and works; only the
designer's browser side is missing, and the warning says so. Set ``MLPIPE_REQUIRE_LABEXTENSION=1``
(CI does) to make such a failure stop the build instead.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE.parent / "mlpipe_jupyter" / "labextension"  # where `jupyter labextension build` writes
SOURCES = ["package.json", "package-lock.json", "tsconfig.json", "install.json", "src", "style"]
STAMP = ".source-hash"


def source_hash() -> str:
    """A digest of everything the built extension is made from."""
    h = hashlib.sha256()
    for name in SOURCES:
        path = HERE / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                h.update(f.relative_to(HERE).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:32]


def cache_folder() -> Path:
    base = os.environ.get("MLPIPE_LABEXTENSION_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlpipe" / "labextension"
    return Path(base)


def _built(digest: str) -> bool:
    stamp = OUTPUT / STAMP
    return stamp.is_file() and stamp.read_text().strip() == digest and (OUTPUT / "static").is_dir()


def _from_cache(digest: str) -> bool:
    cached = cache_folder() / digest
    if not (cached / STAMP).is_file():
        return False
    shutil.rmtree(OUTPUT, ignore_errors=True)
    shutil.copytree(cached, OUTPUT)
    return True


def _to_cache(digest: str) -> None:
    folder = cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=folder))
    shutil.rmtree(tmp)
    shutil.copytree(OUTPUT, tmp)
    try:
        os.rename(tmp, folder / digest)
    except OSError:  # another build put it there first
        shutil.rmtree(tmp, ignore_errors=True)


def build(target_name, version, **_kwargs):
    digest = source_hash()
    if _built(digest) or _from_cache(digest):
        return
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    npm = shutil.which("npm", path=env["PATH"])
    try:
        if npm is None:
            raise RuntimeError("npm was not found")
        install = "ci" if (HERE / "package-lock.json").is_file() else "install"
        subprocess.run([npm, install, "--no-audit", "--no-fund"], cwd=HERE, env=env, check=True)
        subprocess.run([npm, "run", "build:prod"], cwd=HERE, env=env, check=True)
        (OUTPUT / STAMP).write_text(digest + "\n")
        _to_cache(digest)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        if os.environ.get("MLPIPE_REQUIRE_LABEXTENSION") == "1":
            raise
        warnings.warn(f"The JupyterLab extension (the pipeline designer's canvas) was not built: {e}. "
                      "The Python package works without it.", stacklevel=1)
