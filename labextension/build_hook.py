"""Builds the JupyterLab extension while the Python package is built (hatch-jupyter-builder calls ``build``).

Without node/npm, or when the build fails, the Python package still builds and works; only the
designer's browser side is missing, and the warning says so. Set ``MLPIPE_REQUIRE_LABEXTENSION=1``
(CI does) to make such a failure stop the build instead.
"""
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(target_name, version, **_kwargs):
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    npm = shutil.which("npm", path=env["PATH"])
    try:
        if npm is None:
            raise RuntimeError("npm was not found")
        install = "ci" if (HERE / "package-lock.json").is_file() else "install"
        subprocess.run([npm, install, "--no-audit", "--no-fund"], cwd=HERE, env=env, check=True)
        subprocess.run([npm, "run", "build:prod"], cwd=HERE, env=env, check=True)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        if os.environ.get("MLPIPE_REQUIRE_LABEXTENSION") == "1":
            raise
        warnings.warn(f"The JupyterLab extension (the pipeline designer's canvas) was not built: {e}. "
                      "The Python package works without it.", stacklevel=1)
