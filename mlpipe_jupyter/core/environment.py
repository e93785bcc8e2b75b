"""Environments: what a step runs in. Its content hash is part of every step's reuse key.

This module holds the definition only; building one (virtualenv or image) belongs to compute.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys


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

    def add_conda_package(self, conda_package):
        if conda_package not in self.conda_packages:
            self.conda_packages.append(conda_package)

    def add_channel(self, channel):
        if channel not in self.channels:
            self.channels.append(channel)

    def to_dict(self):
        return {"pip_packages": self.pip_packages, "conda_packages": self.conda_packages,
                "python_version": self.python_version, "channels": self.channels}


class PythonSection:
    def __init__(self):
        self.user_managed_dependencies = True
        self.interpreter_path = None
        self.conda_dependencies = CondaDependencies()

    def to_dict(self):
        return {"user_managed_dependencies": self.user_managed_dependencies,
                "interpreter_path": self.interpreter_path,
                "conda_dependencies": self.conda_dependencies.to_dict()}


class DockerSection:
    def __init__(self):
        self.enabled = False
        self.base_image = None
        self.base_dockerfile = None

    def to_dict(self):
        return {"enabled": self.enabled, "base_image": self.base_image, "base_dockerfile": self.base_dockerfile}


class Environment:
    """A named environment definition (Azure ML SDK v1 names)."""

    def __init__(self, name="default"):
        self.name = name
        self.version = None
        self.python = PythonSection()
        self.docker = DockerSection()
        self.environment_variables: dict[str, str] = {}

    def to_dict(self):
        return {"name": self.name, "python": self.python.to_dict(), "docker": self.docker.to_dict(),
                "environment_variables": dict(self.environment_variables)}

    @property
    def content_hash(self) -> str:
        """Identifies what the environment makes, not its name: two names for one definition share builds."""
        d = self.to_dict()
        d.pop("name")
        if self.python.user_managed_dependencies and not self.docker.enabled:
            # user-managed local: the interpreter is the environment
            d["interpreter"] = self.python.interpreter_path or sys.executable
            d["python_version"] = platform.python_version()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:32]

    def __repr__(self):
        return f"Environment(name={self.name!r}, version={self.version!r})"


def default_environment() -> Environment:
    """A step without an environment runs user-managed in the current interpreter."""
    return Environment("user-managed")
