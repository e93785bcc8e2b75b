"""``Environment``: Azure ML SDK v1's environment, the model's definition with the verbs that build it."""
from __future__ import annotations

from mlpipe_jupyter.compute.envbuild import build_image, build_venv
from mlpipe_jupyter.model.environment import (AZURE_CURATED, CURATED, CURATED_PREFIX, RESERVED_PREFIXES,
                                              CondaDependencies, ContainerRegistry, DockerSection,
                                              EnvironmentDefinition, PythonSection, SparkSection,
                                              default_environment)

__all__ = ["Environment", "CondaDependencies", "PythonSection", "DockerSection", "SparkSection", "ContainerRegistry",
           "CURATED", "AZURE_CURATED", "CURATED_PREFIX", "RESERVED_PREFIXES", "default_environment"]


class Environment(EnvironmentDefinition):
    """A named environment definition (Azure ML SDK v1 names)."""

    def build(self, workspace, image_build_compute=None, show_output=True):
        """Build the Docker image of this environment now (``mlpipe/env:<hash>``); reused when it exists."""
        return build_image(self, log=print if show_output else None)

    def build_local(self, workspace, platform=None, useDocker=False, pushImageToWorkspaceAcr=False,
                    show_output=True, **kwargs):
        """Build what local compute uses (a cached virtualenv), or the image with ``useDocker=True``."""
        log = print if show_output else None
        if useDocker:
            return build_image(self, log=log)
        return build_venv(workspace, self, log=log)
