"""What an environment's package lists install here, where Azure ML would build a conda image.

Environments written for Azure ask for things this machine should not or cannot install:

* ``azureml-*`` pip packages (azureml-defaults, azureml-core, azureml-dataprep[...], ...): never
  installed, since this package gives steps the azureml API itself; dropped with one notice.
* conda packages without conda, mamba or micromamba on PATH: installed with pip instead. A conda pin
  ``name=1.2`` means "1.2 or any 1.2.x" and becomes ``name==1.2.*``; ``name=1.2.3`` becomes
  ``name==1.2.3``; a build string (``=py38_0``) and a channel prefix (``conda-forge::``) are dropped.
  Packages named differently on PyPI go through ``CONDA_TO_PIP``. Native libraries that PyPI wheels
  bring along themselves (``BUNDLED_IN_WHEELS``: cudatoolkit, cudnn, mkl, ...) are skipped with a
  notice, since torch and tensorflow wheels carry their own CUDA. Programs and R packages that PyPI
  does not have (``NO_PIP_EQUIVALENT``) are a clear error before anything runs.
* old Python pins (``python=3.6.2``): the nearest Python on PATH (``pythonX.Y``) is used, with a notice.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

CONDA_TO_PIP = {
    "pytorch": "torch", "pytorch-cpu": "torch", "pytorch-gpu": "torch",
    "py-xgboost": "xgboost", "py-xgboost-cpu": "xgboost", "py-xgboost-gpu": "xgboost",
    "tensorflow-gpu": "tensorflow",  # the tensorflow wheel has had GPU support since 2.1
    "tensorflow-cpu": "tensorflow", "keras-gpu": "keras",
    "py-opencv": "opencv-python", "opencv": "opencv-python", "libopencv": "opencv-python",
    "matplotlib-base": "matplotlib", "pytables": "tables", "msgpack-python": "msgpack",
    "lightgbm-cpu": "lightgbm", "py-lightgbm": "lightgbm", "pyqt": "PyQt5", "ruamel_yaml": "ruamel.yaml",
    "pywin32-on-windows": "pywin32", "arrow-cpp": "pyarrow", "faiss-cpu": "faiss-cpu", "faiss-gpu": "faiss-gpu",
}
BUNDLED_IN_WHEELS = {
    "cudatoolkit", "cuda-toolkit", "cudnn", "nccl", "cuda-nvcc", "cuda-runtime", "pytorch-cuda", "cupti",
    "mkl", "mkl-service", "mkl_fft", "mkl_random", "intel-openmp", "blas", "libblas", "libcblas", "liblapack",
    "openblas", "libopenblas", "libgcc", "libgcc-ng", "libstdcxx-ng", "libgfortran-ng", "libgomp", "_libgcc_mutex",
    "_openmp_mutex", "openssl", "ca-certificates", "certifi-win32", "zlib", "xz", "libffi", "ncurses", "readline",
    "sqlite", "tk", "libuuid", "ld_impl_linux-64", "tzdata", "cpuonly", "magma-cuda",
}
NO_PIP_EQUIVALENT = {"openmpi", "mpich", "impi_rt", "nodejs", "git", "gcc", "gxx", "gxx_linux-64", "gcc_linux-64",
                     "make", "ffmpeg", "graphviz", "java-jdk", "openjdk", "r-base", "r-essentials", "julia", "go"}
ALWAYS_THERE = {"python", "pip"}  # every environment built here has both
# What the dropped azureml packages would still have done to the rest of an environment: SDK v1 1.62's
# azureml-dataset-runtime[pandas], which the AutoML packages and azureml-sdk[automl] pull in, caps
# pandas and numpy below 2, and step scripts written for it rely on that (DataFrame.append).
PANDAS_1 = ["pandas<2", "numpy<2"]
BRINGS_PANDAS_1 = {"azureml-train-automl", "azureml-train-automl-runtime", "azureml-automl-runtime",
                   "azureml-automl-core", "azureml-automl-dnn-nlp"}


def requirement_name(spec: str) -> str:
    """The normalised project name a pip or conda spec names ('' for an option line such as --index-url)."""
    spec = spec.strip().split("::")[-1]
    m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
    return re.sub(r"[-_.]+", "-", m.group(0)).lower() if m and not spec.startswith("-") else ""


def is_azureml(spec: str) -> bool:
    name = requirement_name(spec)
    return name == "azureml" or name.startswith("azureml-")


def conda_to_pip(spec: str) -> str:
    """One conda match spec as a pip requirement (see the module's docstring)."""
    spec = spec.split("::")[-1].strip()
    spec = re.sub(r"\s+(?=[<>=!~])", "", spec)  # "numpy >=1.2"
    spec = re.sub(r"\s+", "=", spec)  # "numpy 1.21 py38_0": version, then build string
    m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(.*)", spec)
    if not m:
        return spec
    name, rest = CONDA_TO_PIP.get(m.group(1).lower(), m.group(1)), m.group(2)
    if rest.startswith("=="):
        return f"{name}=={rest[2:].split('=')[0]}"
    if not rest.startswith("="):
        return name + rest
    version = rest[1:].split("=")[0]  # conda's fuzzy pin, maybe followed by a build string
    if version in ("", "*"):
        return name
    if version.endswith("*"):
        return f"{name}=={version.rstrip('.*')}.*"
    return f"{name}=={version}" if version.count(".") >= 2 else f"{name}=={version}.*"


@dataclass
class InstallPlan:
    """What a build installs: pip requirements, conda specs (only when conda does the build), and
    what the build log says about what was changed on the way."""
    pip: list = field(default_factory=list)
    conda: list = field(default_factory=list)
    notices: list = field(default_factory=list)
    impossible: list = field(default_factory=list)  # conda packages pip cannot give
    constraints: list = field(default_factory=list)  # pip constraints: caps on what the packages pull in

    @property
    def installs(self) -> bool:
        return bool(self.pip or self.conda)


def _brings_pandas_1(spec: str) -> bool:
    """Would this azureml requirement have installed azureml-dataset-runtime[pandas]?"""
    name, extras = requirement_name(spec), re.findall(r"[A-Za-z0-9_-]+", spec.partition("[")[2].partition("]")[0])
    extras = {e.lower() for e in extras}
    return (name in BRINGS_PANDAS_1 or (name == "azureml-sdk" and "automl" in extras)
            or (name in ("azureml-dataset-runtime", "azureml-dataprep") and "pandas" in extras))


def install_plan(deps, with_conda: bool) -> InstallPlan:
    """The packages of a CondaDependencies as this machine installs them, conda there or not."""
    plan = InstallPlan()
    dropped = [p for p in [*deps.pip_packages, *deps.conda_packages] if is_azureml(p)]
    if dropped:
        plan.notices.append(f"Not installing {', '.join(dropped)}: steps get the azureml API from mlpipe itself.")
    if any(_brings_pandas_1(p) for p in dropped):
        plan.constraints = list(PANDAS_1)
        plan.notices.append(f"Keeping {' and '.join(PANDAS_1)}, as {', '.join(p for p in dropped if _brings_pandas_1(p))} "
                            "would have (SDK v1's azureml-dataset-runtime[pandas]).")
    plan.pip = [p for p in deps.pip_packages if not is_azureml(p)]
    conda = [p for p in deps.conda_packages if not is_azureml(p) and requirement_name(p) not in ALWAYS_THERE]
    if with_conda or not conda:
        plan.conda = conda
        return plan
    skipped = [p for p in conda if requirement_name(p) in BUNDLED_IN_WHEELS]
    plan.impossible = [p for p in conda
                       if requirement_name(p) in NO_PIP_EQUIVALENT or requirement_name(p).startswith("r-")]
    converted = [conda_to_pip(p) for p in conda if p not in skipped and p not in plan.impossible]
    if converted:
        plan.notices.append(f"Without conda, the conda packages are installed with pip as {', '.join(converted)}.")
    if skipped:
        plan.notices.append(f"Skipping {', '.join(skipped)}: native libraries that the PyPI wheels bring themselves.")
    plan.pip = converted + plan.pip
    return plan


def _version_tuple(text: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", text or "")[:2])


def running_python_matches(want: str | None) -> bool:
    """The running interpreter is the one ``want`` ("3", "3.11", "3.11.7") asks for."""
    return not want or _version_tuple(want) == sys.version_info[:len(_version_tuple(want))]


def available_pythons() -> dict[tuple, str]:
    """(major, minor) -> executable, for every ``pythonX.Y`` on PATH and the running interpreter."""
    found: dict[tuple, str] = {}
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for name in names:
            m = re.fullmatch(r"python(\d)\.(\d+)", name)
            path = Path(folder) / name
            if m and os.access(path, os.X_OK) and (int(m[1]), int(m[2])) not in found:
                found[(int(m[1]), int(m[2]))] = str(path)
    found[sys.version_info[:2]] = getattr(sys, "_base_executable", None) or sys.executable
    return found


def resolve_python(want: str | None) -> tuple[str, str | None]:
    """The interpreter a virtualenv for ``want`` is made from, and a notice when it is not the one asked
    for: the running one when it matches, else ``pythonX.Y`` on PATH, else the nearest version there
    that starts (a pyenv shim of a version that is not active does not)."""
    here = getattr(sys, "_base_executable", None) or sys.executable
    if running_python_matches(want):
        return here, None
    wanted = _version_tuple(want)
    major, minor = wanted[0], (wanted[1] if len(wanted) == 2 else 0)
    pythons = available_pythons()
    for version in sorted(pythons, key=lambda v: (abs(v[0] - major) * 100 + abs(v[1] - minor), -v[1])):
        if pythons[version] == here or _starts(pythons[version]):
            if version == wanted:
                return pythons[version], None
            return pythons[version], (f"Python {want} is not on this machine: using the nearest one, "
                                      f"Python {version[0]}.{version[1]} ({pythons[version]}).")
    return here, None  # not reached: the running interpreter is always there


@functools.lru_cache(maxsize=64)
def _starts(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import venv"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def conda_tool() -> str | None:
    """conda, mamba or micromamba on PATH (mamba first: it solves faster), or None."""
    return next(filter(None, (shutil.which(t) for t in ("mamba", "conda", "micromamba"))), None)
