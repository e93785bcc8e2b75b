"""Environment definitions: what a step runs in. The content hash is part of every step's reuse key.

This module holds the definition (Azure ML SDK v1's sections and constructors), its identity and the
workspace registry. Building one (a cached virtualenv or an image ``mlpipe/env:<hash>``) is the
compute layer's; the SDK's ``Environment`` adds ``build``/``build_local`` on top of this class.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.secrets import MASK, masked_variables, recall, remember, unmask
from mlpipe_jupyter.model.names import check_registry_name
from mlpipe_jupyter.model.packages import conda_tool, install_plan, resolve_python

# Azure ML's default base images (azureml.core.runconfig). No registry is reachable here: the Docker
# backend builds every image of mcr.microsoft.com/azureml/ on its own local base image instead.
DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.1-cudnn8-ubuntu20.04"
AZURE_IMAGE_PREFIX = "mcr.microsoft.com/azureml/"

# Names of the environments shipped with the package; users cannot register names with these prefixes.
CURATED_PREFIX = "MLPipe-"
RESERVED_PREFIXES = (CURATED_PREFIX, "AzureML-")


class CondaDependencies:
    """Packages an environment needs (Azure ML's name), pip and conda."""

    def __init__(self, pip_packages=None, conda_packages=None, python_version=None, channels=None):
        self.pip_packages = list(pip_packages or [])
        self.conda_packages = list(conda_packages or [])
        self.python_version = python_version
        self.channels = list(channels or [])

    @staticmethod
    def create(pip_packages=None, conda_packages=None, python_version=None, pin_sdk_version=True, pip_indexurl=None):
        return CondaDependencies(pip_packages, conda_packages, python_version)

    def add_pip_package(self, pip_package):
        if pip_package not in self.pip_packages:
            self.pip_packages.append(pip_package)

    def remove_pip_package(self, pip_package):
        self.pip_packages = [p for p in self.pip_packages if p != pip_package]

    def add_conda_package(self, conda_package):
        if conda_package not in self.conda_packages:
            self.conda_packages.append(conda_package)

    def remove_conda_package(self, conda_package):
        self.conda_packages = [p for p in self.conda_packages if p != conda_package]

    def add_channel(self, channel):
        if channel not in self.channels:
            self.channels.append(channel)

    def set_python_version(self, version):
        self.python_version = version

    @property
    def pip_packages_list(self):
        return list(self.pip_packages)

    def to_dict(self):
        return {"pip_packages": self.pip_packages, "conda_packages": self.conda_packages,
                "python_version": self.python_version, "channels": self.channels}

    @staticmethod
    def from_dict(d) -> "CondaDependencies":
        d = d or {}
        return CondaDependencies(d.get("pip_packages"), d.get("conda_packages"), d.get("python_version"),
                                 d.get("channels"))

    @staticmethod
    def _from_conda_file(path) -> "CondaDependencies":
        """A conda environment.yml: plain entries are conda packages (``python=X.Y`` sets the version),
        the ``pip:`` list holds pip packages."""
        import yaml

        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as e:
            raise UserError(f"Cannot read the conda specification '{path}': {e.strerror or e}.") from None
        except yaml.YAMLError as e:
            raise UserError(f"The conda specification '{path}' is not valid YAML: {e}") from None
        if not isinstance(doc, dict):
            raise UserError(f"The conda specification '{path}' should be a mapping with 'dependencies'.")
        deps = CondaDependencies(channels=doc.get("channels") or [])
        for item in doc.get("dependencies") or []:
            if isinstance(item, dict):
                for pkg in item.get("pip") or []:
                    deps.add_pip_package(str(pkg))
                continue
            item = str(item).strip()
            name = item.split("=")[0].split("<")[0].split(">")[0].strip()
            if name == "python":
                deps.python_version = item[len("python"):].lstrip("=").strip() or None
            elif name != "pip":
                deps.add_conda_package(item)
        return deps

    def serialize_to_string(self) -> str:
        import yaml

        deps: list = []
        if self.python_version:
            deps.append(f"python={self.python_version}")
        deps += self.conda_packages
        if self.pip_packages:
            deps += ["pip", {"pip": list(self.pip_packages)}]
        return yaml.safe_dump({"channels": self.channels, "dependencies": deps}, sort_keys=False)

    def __repr__(self):
        return f"CondaDependencies(pip_packages={self.pip_packages!r}, conda_packages={self.conda_packages!r})"


class PythonSection:
    """As in Azure, a new environment's packages are installed (``user_managed_dependencies=False``)."""

    def __init__(self):
        self.user_managed_dependencies = False
        self.interpreter_path = None
        self.conda_dependencies = CondaDependencies()

    def to_dict(self):
        return {"user_managed_dependencies": self.user_managed_dependencies,
                "interpreter_path": self.interpreter_path,
                "conda_dependencies": self.conda_dependencies.to_dict()}


class ContainerRegistry:
    """Where a base image would be pulled from. Nothing is pulled here; the password is a secret, kept
    in this process only (stored as ``***``)."""

    def __init__(self, address=None, username=None, password=None):
        self.address, self.username, self.password = address, username, password

    def to_dict(self, secrets: bool = False):
        return {"address": self.address, "username": self.username,
                "password": self.password if secrets or not self.password else MASK}

    @staticmethod
    def from_dict(d) -> "ContainerRegistry":
        d = d or {}
        return ContainerRegistry(d.get("address"), d.get("username"), d.get("password"))


# Azure's defaults of the settings added after the first three: left out of the definition while they
# hold them, so the content hash of an environment that does not use them stays what it was.
_DOCKER_DEFAULTS = {"shared_volumes": True, "shm_size": None, "arguments": []}


class DockerSection:
    def __init__(self):
        self.enabled = False
        self.base_image = None
        self.base_dockerfile = None
        self.base_image_registry = ContainerRegistry()
        self.shared_volumes = True  # kept; local containers get their mounts from the step
        self.shm_size = None  # e.g. "2g": the container's /dev/shm
        self.arguments = []  # kept; the Docker backend starts containers through its API, not `docker run`

    def to_dict(self, secrets: bool = False):
        d = {"enabled": self.enabled, "base_image": self.base_image, "base_dockerfile": self.base_dockerfile}
        d.update({k: getattr(self, k) for k, default in _DOCKER_DEFAULTS.items() if getattr(self, k) != default})
        if self.base_image_registry.address or self.base_image_registry.username or self.base_image_registry.password:
            d["base_image_registry"] = self.base_image_registry.to_dict(secrets)
        return d

    def _load(self, d: dict):
        self.enabled = d.get("enabled", False)
        self.base_image = d.get("base_image")
        self.base_dockerfile = d.get("base_dockerfile")
        self.base_image_registry = ContainerRegistry.from_dict(d.get("base_image_registry"))
        for key, default in _DOCKER_DEFAULTS.items():
            setattr(self, key, copy.copy(d.get(key, default)))


class SparkSection:
    """Azure's Spark settings: kept with the environment, no effect on local steps."""

    def __init__(self):
        self.repositories = []
        self.packages = []
        self.precache_packages = True

    def to_dict(self):
        return {"repositories": list(self.repositories), "packages": list(self.packages),
                "precache_packages": self.precache_packages}

    def _is_default(self) -> bool:
        return not self.repositories and not self.packages and self.precache_packages is True


class EnvironmentDefinition:
    """A named environment definition (Azure ML SDK v1 names and sections)."""

    def __init__(self, name="default"):
        self.name = name
        self.version = None
        self.python = PythonSection()
        self.docker = DockerSection()
        self.spark = SparkSection()
        self.environment_variables: dict[str, str] = {}

    # -- definition ---------------------------------------------------------------------------------------
    def to_dict(self, secrets: bool = False):
        """The definition as it may be stored or shown: secret-looking variables keep their name only
        (``secrets=True``: with their values, for a document that stays in this process)."""
        variables = dict(self.environment_variables) if secrets else masked_variables(self.environment_variables)
        d = {"name": self.name, "version": self.version, "python": self.python.to_dict(),
             "docker": self.docker.to_dict(secrets), "environment_variables": variables}
        if not self.spark._is_default():  # only when used: the hash of every other environment is unchanged
            d["spark"] = self.spark.to_dict()
        return d

    def with_secrets(self, workspace=None, where: str | None = None) -> "EnvironmentDefinition":
        """This environment with every stored ``***`` filled in: from this process when it registered the
        environment, else from the runner's environment variable of that name. A missing one is a
        UserError naming it, before anything runs."""
        if MASK not in self.environment_variables.values():
            return self
        env = copy.deepcopy(self)
        if workspace is not None:
            env.environment_variables = recall(_owner(workspace, self.name, self.version), env.environment_variables)
        try:
            env.environment_variables = {k: unmask(k, v, where or f"Environment '{self.name}'")
                                         for k, v in env.environment_variables.items()}
        except ValueError as e:
            raise UserError(str(e)) from None
        return env

    @classmethod
    def from_dict(cls, d) -> "EnvironmentDefinition":
        d = d or {}
        env = cls(d.get("name", "env"))
        env.version = d.get("version")
        py = d.get("python") or {}
        env.python.user_managed_dependencies = py.get("user_managed_dependencies", True)
        env.python.interpreter_path = py.get("interpreter_path")
        env.python.conda_dependencies = CondaDependencies.from_dict(py.get("conda_dependencies"))
        env.docker._load(d.get("docker") or {})
        sp = d.get("spark") or {}
        env.spark.repositories = list(sp.get("repositories") or [])
        env.spark.packages = list(sp.get("packages") or [])
        env.spark.precache_packages = sp.get("precache_packages", True)
        env.environment_variables = dict(d.get("environment_variables") or {})
        return env

    def _definition(self) -> dict:
        """What the environment makes: everything but its name and version."""
        d = self.to_dict()
        d.pop("name")
        d.pop("version")
        return d

    @property
    def content_hash(self) -> str:
        """Identifies what the environment makes, not its name: two names for one definition share builds."""
        d = self._definition()
        interpreter = self.interpreter_identity()
        if interpreter is not None:
            d["interpreter"] = interpreter
            d["python_version"] = platform.python_version()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:32]

    def interpreter_identity(self) -> str | None:
        """For a local environment that is not built (user-managed, or with nothing to install), the
        interpreter it runs in, however it was spelled (``python`` or ``python3``, a link or the file):
        its real file, and the virtualenv or prefix around it, since two venvs share one interpreter
        file. None for other environments."""
        if self.docker.enabled or self.needs_build:
            return None
        if self.python.interpreter_path is None:
            return _this_interpreter()
        given = shutil.which(self.python.interpreter_path) or self.python.interpreter_path
        venv = Path(os.path.abspath(given)).parent.parent
        prefix = os.path.realpath(venv) if (venv / "pyvenv.cfg").is_file() else None
        return os.path.realpath(given) + (f" in {prefix}" if prefix else "")

    @property
    def needs_build(self) -> bool:
        """A non-user-managed environment is built (a virtualenv) when it installs something or needs
        another Python; one with nothing to install runs in the current interpreter, at no cost."""
        if self.python.user_managed_dependencies:
            return False
        deps = self.python.conda_dependencies
        plan = install_plan(deps, with_conda=True)
        if plan.pip or (plan.conda and (conda_tool() is not None or install_plan(deps, with_conda=False).installs)):
            return True
        here = getattr(sys, "_base_executable", None) or sys.executable
        return resolve_python(deps.python_version)[0] != here

    def clone(self, new_name) -> "EnvironmentDefinition":
        env = copy.deepcopy(self)
        env.name, env.version = new_name, None
        return env

    # -- constructors (Azure ML SDK v1) -------------------------------------------------------------------
    @classmethod
    def from_pip_requirements(cls, name, file_path, pip_version=None) -> "EnvironmentDefinition":
        """Each requirement line (options such as ``--index-url`` included) becomes a pip package."""
        try:
            text = Path(file_path).read_text()
        except OSError as e:
            raise UserError(f"Environment '{name}': cannot read the requirements file '{file_path}': "
                            f"{e.strerror or e}.") from None
        env = cls(name)
        env.python.user_managed_dependencies = False
        for line in text.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                env.python.conda_dependencies.add_pip_package(line)
        if pip_version:
            env.python.conda_dependencies.add_pip_package(f"pip=={pip_version}")
        return env

    @classmethod
    def from_conda_specification(cls, name, file_path) -> "EnvironmentDefinition":
        env = cls(name)
        env.python.user_managed_dependencies = False
        env.python.conda_dependencies = CondaDependencies._from_conda_file(file_path)
        return env

    @classmethod
    def from_existing_conda_environment(cls, name, conda_environment_name) -> "EnvironmentDefinition":
        """Runs user-managed in that conda environment's interpreter (it is not copied or rebuilt)."""
        prefix = _find_conda_environment(conda_environment_name)
        python = prefix / "bin" / "python"
        if not python.exists():
            python = prefix / "python.exe"
        env = cls(name)
        env.python.user_managed_dependencies = True
        env.python.interpreter_path = str(python)
        return env

    @classmethod
    def from_docker_image(cls, name, image, conda_specification=None, pip_requirements=None) -> "EnvironmentDefinition":
        env = (cls.from_conda_specification(name, conda_specification) if conda_specification else
               cls.from_pip_requirements(name, pip_requirements) if pip_requirements else None)
        if env is None:  # as in Azure: with no package list the image's own Python is used as it is
            env = cls(name)
            env.python.user_managed_dependencies = True
        env.docker.enabled = True
        env.docker.base_image = image
        return env

    # -- registry --------------------------------------------------------------------------------------------
    def register(self, workspace) -> "EnvironmentDefinition":
        """Store the definition; a new version only when it differs from the latest one of that name."""
        if any(self.name.startswith(p) for p in RESERVED_PREFIXES):
            raise UserError(f"Environment name '{self.name}' is reserved: names starting with "
                            f"{' or '.join(repr(p) for p in RESERVED_PREFIXES)} are curated environments. "
                            "Pick another name.")
        check_registry_name("Environment", self.name)
        version = workspace._store.register_environment(self.name, self.content_hash, self.to_dict())
        self.version = str(version)
        remember(_owner(workspace, self.name, self.version), self.environment_variables)
        if self.docker.base_image_registry.password:
            remember(_owner(workspace, self.name, self.version),
                     {REGISTRY_PASSWORD: self.docker.base_image_registry.password})
        return self

    @classmethod
    def get(cls, workspace, name, version=None, label=None) -> "EnvironmentDefinition":
        if name in CURATED or name in AZURE_CURATED:
            return cls._curated(name)
        if name.startswith("AzureML-"):
            raise UserError(f"'{name}' is not one of the Azure ML curated environments this package knows. "
                            f"Known: {', '.join(sorted(AZURE_CURATED))} (and {', '.join(CURATED)}). Pick the "
                            "nearest one, or define the environment with its packages.")
        definition = workspace._store.environment_definition(name, None if version is None else int(version))
        if definition is None:
            known = sorted(set(workspace._store.environment_names()) | set(CURATED))
            what = f"'{name}'" + (f" version {version}" if version is not None else "")
            raise UserError(f"No environment {what} in workspace '{workspace.name}' (known: {', '.join(known)}).")
        return cls._registered(workspace, definition)

    @classmethod
    def list(cls, workspace) -> dict:
        """The latest version of every registered environment, and the curated ones (Azure's names too)."""
        out = {name: cls._curated(name) for name in [*CURATED, *AZURE_CURATED]}
        for definition in workspace._store.latest_environment_definitions():
            out[definition["name"]] = cls._registered(workspace, definition)
        return out

    @classmethod
    def _registered(cls, workspace, definition: dict) -> "EnvironmentDefinition":
        """A registered environment as read back, with the secrets this process set filled in."""
        env = cls.from_dict(definition)
        env.environment_variables = recall(_owner(workspace, env.name, env.version), env.environment_variables)
        if env.docker.base_image_registry.password == MASK:
            known = recall(_owner(workspace, env.name, env.version), {REGISTRY_PASSWORD: MASK})[REGISTRY_PASSWORD]
            env.docker.base_image_registry.password = known
        return env

    @classmethod
    def _curated(cls, name) -> "EnvironmentDefinition":
        """A curated environment; an Azure name gives ours under that name, as Azure returns its own."""
        env = cls.from_dict(CURATED[AZURE_CURATED.get(name, name)])
        env.name = name
        return env

    def __repr__(self):
        return f"Environment(name={self.name!r}, version={self.version!r})"


REGISTRY_PASSWORD = "docker.base_image_registry.password"


def _owner(workspace, name, version) -> tuple:
    return ("environment", str(workspace.path), name, str(version))


def _find_conda_environment(name) -> Path:
    """The prefix of a named conda environment: asked of conda when it is installed, else the usual folders."""
    for tool in ("conda", "mamba", "micromamba"):
        exe = shutil.which(tool)
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "env", "list", "--json"], capture_output=True, text=True, timeout=60)
            for prefix in json.loads(out.stdout or "{}").get("envs", []):
                if Path(prefix).name == name:
                    return Path(prefix)
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    import os

    roots = [os.environ.get("CONDA_PREFIX"), os.environ.get("MAMBA_ROOT_PREFIX"), "~/.conda", "~/miniconda3",
             "~/anaconda3", "~/miniforge3", "~/mambaforge", "~/micromamba", "/opt/conda"]
    for root in filter(None, roots):
        candidate = Path(root).expanduser() / "envs" / name
        if candidate.is_dir():
            return candidate
    raise UserError(f"No conda environment named '{name}' was found (asked conda/mamba when installed and looked "
                    "in the usual envs folders). Create it first, or give its interpreter with "
                    "env.python.interpreter_path.")


def _curated_definition(name, pip_packages) -> dict:
    env = EnvironmentDefinition(name)
    env.version = "1"
    env.python.user_managed_dependencies = False
    env.python.conda_dependencies = CondaDependencies(pip_packages)
    return env.to_dict()


CURATED = {
    f"{CURATED_PREFIX}Minimal": _curated_definition(f"{CURATED_PREFIX}Minimal", []),
    f"{CURATED_PREFIX}DataScience": _curated_definition(f"{CURATED_PREFIX}DataScience", [
        "numpy==1.26.4", "pandas==2.2.2", "scipy==1.13.1", "scikit-learn==1.5.0", "matplotlib==3.9.0"]),
    f"{CURATED_PREFIX}PyTorch": _curated_definition(f"{CURATED_PREFIX}PyTorch", ["torch==2.5.1", "numpy==1.26.4"]),
    f"{CURATED_PREFIX}TensorFlow": _curated_definition(f"{CURATED_PREFIX}TensorFlow",
                                                       ["tensorflow==2.18.0", "numpy==1.26.4"]),
}

# Azure ML's curated environments that its sample notebooks use, by the curated one of ours that
# stands in for each here (CPU builds from PyPI; the GPU ones' CUDA comes with the wheels).
AZURE_CURATED = {
    "AzureML-Minimal": f"{CURATED_PREFIX}Minimal",
    **{name: f"{CURATED_PREFIX}DataScience" for name in (
        "AzureML-Tutorial", "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu",
        "AzureML-sklearn-0.24.1-ubuntu18.04-py37-cpu-inference", "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu",
        "AzureML-sklearn-1.5", "AzureML-Scikit-learn0.24-Cuda11-OpenMpi4.1.0-py36")},
    **{name: f"{CURATED_PREFIX}PyTorch" for name in (
        "AzureML-PyTorch-1.4-GPU", "AzureML-PyTorch-1.6-GPU", "AzureML-PyTorch-1.6-CPU",
        "AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu", "AzureML-acpt-pytorch-1.13-cuda11.7")},
    **{name: f"{CURATED_PREFIX}TensorFlow" for name in (
        "AzureML-TensorFlow-2.0-GPU", "AzureML-TensorFlow-2.1-GPU", "AzureML-TensorFlow-2.3-GPU",
        "AzureML-tensorflow-2.6-ubuntu20.04-py38-cuda11-gpu", "AzureML-tensorflow-2.7-ubuntu20.04-py38-cuda11-gpu",
        "AzureML-tensorflow-2.16-cuda12")},
}


def default_environment() -> EnvironmentDefinition:
    """A step without an environment runs user-managed in the current interpreter."""
    env = EnvironmentDefinition("user-managed")
    env.python.user_managed_dependencies = True
    return env


def is_default_environment(env) -> bool:
    """Is this the untouched default (nothing to record)? A RunConfiguration's environment edited in place,
    as Azure's samples do (``user_managed_dependencies = False`` plus packages), is not."""
    return env is None or env.to_dict() == default_environment().to_dict()


@functools.lru_cache(maxsize=1)
def _this_interpreter() -> str:
    """The interpreter running this process and its prefix: fixed for the life of the process."""
    return f"{os.path.realpath(sys.executable)} in {os.path.realpath(sys.prefix)}"
