"""Compute targets by name. ``local`` and ``docker`` always exist; other kinds plug in through compute/."""
from __future__ import annotations


from mlpipe_jupyter.compute.ray import token_owner
from mlpipe_jupyter.errors import ComputeTargetError, UserError
from mlpipe_jupyter.model.names import check_registry_name
from mlpipe_jupyter.secrets import MASK, looks_secret, remember

BUILTIN_TARGETS = {"local": "local", "docker": "docker"}


class ComputeTarget:
    """A named place to run steps: ``ComputeTarget(ws, "local")``."""

    def __init__(self, workspace, name):
        targets = list_targets(workspace._store)
        if name not in targets:
            raise ComputeTargetError(f"No compute target named '{name}' in workspace '{workspace.name}' "
                            f"(known: {', '.join(sorted(targets))}).")
        self.workspace = workspace
        self.name = name
        self.type = targets[name]["kind"]
        self.config = targets[name]["config"]

    @staticmethod
    def create(workspace, name, provisioning_configuration):
        """Record a target; ``attach`` is the same here (nothing is provisioned, the machine is yours)."""
        check_registry_name("Compute target", name)
        if not isinstance(provisioning_configuration, _ProvisioningConfiguration):
            raise UserError(f"ComputeTarget.create('{name}') needs a configuration from "
                            "LocalCompute, DockerCompute or RayCompute.provisioning_configuration(...).")
        if name in BUILTIN_TARGETS:
            raise UserError(f"'{name}' is a built-in compute target; give your target another name.")
        kind, config = provisioning_configuration.kind, provisioning_configuration.to_dict()
        if kind is None:  # a cloud cluster: it runs where the workspace's config maps its name
            kind, config = mapped_target(workspace, name, config)
        workspace._store.save_compute_target(name, kind, config)
        return ComputeTarget(workspace, name)

    @staticmethod
    def attach(workspace, name, attach_configuration):
        return ComputeTarget.create(workspace, name, attach_configuration)

    @staticmethod
    def list(workspace):
        return list(workspace_targets(workspace).values())

    def get_status(self):
        return TargetStatus(self.name, self.type)

    def wait_for_completion(self, show_output=False, **kwargs):
        return None

    def update(self, min_nodes=None, max_nodes=None, idle_seconds_before_scaledown=None):
        """Azure's cluster scaling settings, kept; ``max_nodes`` caps how many steps run at once here."""
        changes = {"min_nodes": min_nodes, "max_nodes": max_nodes,
                   "idle_seconds_before_scaledown": idle_seconds_before_scaledown}
        config = dict(self.config)
        config["cloud"] = {**(config.get("cloud") or {}), **{k: v for k, v in changes.items() if v is not None}}
        if max_nodes is not None and self.type == "local":
            config["max_concurrency"] = max_nodes
        self.workspace._store.save_compute_target(self.name, self.type, config)
        self.config = config

    def list_nodes(self) -> list[dict]:
        """Azure's nodes of a cluster: here, this machine."""
        return [{"nodeId": "local", "port": None, "publicIpAddress": "127.0.0.1", "privateIpAddress": "127.0.0.1",
                 "nodeState": "idle"}]

    def delete(self):
        if self.name in BUILTIN_TARGETS:
            raise UserError(f"'{self.name}' is a built-in compute target and cannot be deleted.")
        self.workspace._store.delete_compute_target(self.name)

    def __repr__(self):
        return f"ComputeTarget(name={self.name!r}, type={self.type!r})"


class TargetStatus(str):
    """``"Succeeded"``, and Azure's status object (``serialize()``, ``provisioning_state``) in one."""

    def __new__(cls, name, kind):
        status = super().__new__(cls, "Succeeded")
        status.name, status.kind = name, kind
        return status

    provisioning_state = property(lambda self: str(self))

    def serialize(self) -> dict:
        return {"name": self.name, "type": self.kind, "provisioningState": str(self), "currentNodeCount": 1,
                "targetNodeCount": 1, "errors": None}


def mapped_target(workspace, name, config) -> tuple[str, dict]:
    """(kind, config) for a cloud cluster named ``name``: the workspace config's ``compute_targets``
    entry (``"docker"``, ``{"kind": "docker", ...options}``, or ``{"kind": "ray", "address":
    "http://HOST:8265", ...}`` with RayCompute's options), local compute otherwise."""
    entry = (workspace.config.get("compute_targets") or {}).get(name, "local")
    options = {}
    if isinstance(entry, dict):
        options = {k: v for k, v in entry.items() if k != "kind"}
        entry = entry.get("kind", "local")
        secret = sorted(k for k in options if looks_secret(k) and k != "auth_header")  # a header's name is not
        if secret:  # the config is a file in the workspace, and its options are stored with the target
            raise UserError(f"The workspace config maps compute target '{name}' with {', '.join(secret)}, which "
                            "would be kept in clear; give credentials through the environment instead (for a Ray "
                            "cluster, RAY_AUTH_TOKEN).")
    mapped = {"max_concurrency": config.get("max_nodes")} if entry == "local" else {}
    return entry, {**mapped, **options, "cloud": {k: v for k, v in config.items() if v is not None}}


class _ProvisioningConfiguration:
    def __init__(self, kind, **config):
        self.kind = kind
        self._config = config

    def to_dict(self):
        return dict(self._config)


class LocalCompute:
    """Steps as subprocesses of the machine running the pipeline."""

    @staticmethod
    def provisioning_configuration(max_concurrency=None):
        return _ProvisioningConfiguration("local", max_concurrency=max_concurrency)


class DockerCompute:
    """Steps in containers on the Docker engine named by ``DOCKER_HOST`` (or the default socket)."""

    @staticmethod
    def provisioning_configuration(image=None, environment=None, cpu_count=None, memory_gb=None, gpu_count=None,
                                   mounts=None, network=False, max_concurrency=None, pids_limit=None):
        """``image``: a local image for steps without a built environment; ``environment``: a registered
        environment name or an Environment used by steps that name none; ``mounts``: extra
        ``"host:container[:ro]"`` bind mounts; ``network``: False (no network), True/"bridge" or "host";
        ``gpu_count``: GPUs to request (-1 for all); ``pids_limit``: processes and threads one step may
        have (default 4096)."""
        env = environment.to_dict() if hasattr(environment, "to_dict") else environment
        mounts = list(mounts or [])
        for m in mounts:
            parts = str(m).split(":")
            if len(parts) not in (2, 3) or not parts[0].startswith("/") or not parts[1].startswith("/") or \
                    (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise UserError(f"Docker mount {m!r} should read 'HOST_PATH:CONTAINER_PATH' or "
                                "'HOST_PATH:CONTAINER_PATH:ro' with absolute paths.")
        if pids_limit is not None and (isinstance(pids_limit, bool) or not isinstance(pids_limit, int)
                                       or pids_limit < 1):
            raise UserError(f"Docker pids_limit {pids_limit!r} should be a positive whole number.")
        if network not in (False, True, None, "none", "bridge", "host"):
            raise UserError(f"Docker network {network!r} should be False, True, 'bridge' or 'host'.")
        return _ProvisioningConfiguration("docker", image=image, environment=env, cpu_count=cpu_count,
                                          memory_gb=memory_gb, gpu_count=gpu_count, mounts=mounts,
                                          network=network, max_concurrency=max_concurrency, pids_limit=pids_limit)


class RayCompute:
    """Steps as jobs on a Ray cluster (compute/ray.py): its nodes share this machine's filesystem, or steps
    exchange their files through a staging URL (compute/staging.py)."""

    @staticmethod
    def provisioning_configuration(address, auth_token=None, auth_header="Authorization", num_cpus=1, num_gpus=None,
                                   memory=None, resources=None, step_resources=None, python=None, runtime_env=None,
                                   max_concurrency=None, staging_url=None):
        """``address``: the Ray dashboard, ``http://HOST:8265``; ``auth_token``: sent in ``auth_header``
        (as ``Bearer <token>`` in ``Authorization``), kept by this process only (others read
        ``RAY_AUTH_TOKEN``); ``num_cpus``, ``num_gpus``, ``memory`` (bytes) and ``resources`` (custom
        resources, ``{"name": amount}``): what each step asks for; ``step_resources``: per step name,
        overrides of the same keys; ``python``: the interpreter on the nodes for steps without an
        environment of their own; ``runtime_env``: Ray runtime_env entries (``pip``, ``env_vars``) for every step;
        ``staging_url``: for a cluster that does not share this machine's filesystem, an fsspec URL both
        reach (``s3://bucket/staging``) through which steps get their files and send back their outputs,
        files and metrics (without it the nodes must see this machine's paths, as on NFS)."""
        if not isinstance(address, str) or not address.startswith(("http://", "https://")):
            raise UserError(f"Ray address {address!r} should be the cluster's dashboard URL, like 'http://HOST:8265'.")
        address = address.rstrip("/")
        for where, asked in [("resources", {"num_cpus": num_cpus, "num_gpus": num_gpus, "memory": memory,
                                            "resources": resources}),
                             *((f"step_resources['{k}']", v) for k, v in (step_resources or {}).items())]:
            _check_resources(where, asked)
        if auth_token is not None:
            remember(token_owner(address), {"auth_token": auth_token})
        return _ProvisioningConfiguration(
            "ray", address=address, auth_header=auth_header, auth_token=MASK if auth_token is not None else None,
            num_cpus=num_cpus, num_gpus=num_gpus, memory=memory, resources=dict(resources or {}),
            step_resources=dict(step_resources or {}), python=python, runtime_env=dict(runtime_env or {}),
            max_concurrency=max_concurrency, staging_url=_staging_url(staging_url))


def _staging_url(url):
    if url is None:
        return None
    if not isinstance(url, str) or "://" not in url:
        raise UserError(f"Ray staging_url {url!r} should be an fsspec URL every node and this machine reach, like "
                        "'s3://bucket/staging' or 'file:///shared/staging'.")
    return url.rstrip("/")


def _check_resources(where: str, asked) -> None:
    if not isinstance(asked, dict):
        raise UserError(f"Ray {where} should be a dict of num_cpus, num_gpus, memory and resources, not {asked!r}.")
    unknown = sorted(set(asked) - {"num_cpus", "num_gpus", "memory", "resources"})
    custom = asked.get("resources") or {}
    amounts = [(k, v) for k, v in asked.items() if k != "resources" and v is not None] + list(custom.items())
    bad = [f"{k}={v!r}" for k, v in amounts
           if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0]
    if unknown or bad or not isinstance(custom, dict):
        raise UserError(f"Ray {where} should give num_cpus, num_gpus, memory (bytes) and resources "
                        f"({{name: amount}}) as numbers of at least 0; got {', '.join(unknown + bad) or custom!r}.")


def target_name(compute_target, default="local") -> str:
    """The name a step records: a ComputeTarget's, a string as given (checked at submit), else ``default``."""
    if compute_target is None:
        return default
    if isinstance(compute_target, str):
        return compute_target
    name = getattr(compute_target, "name", None)
    if not isinstance(name, str):
        raise UserError(f"compute_target {compute_target!r} is neither a ComputeTarget nor a target's name.")
    return name


def workspace_targets(workspace) -> dict:
    """``ws.compute_targets`` as Azure has it: name -> ComputeTarget."""
    return {name: ComputeTarget(workspace, name) for name in list_targets(workspace._store)}


def list_targets(store) -> dict:
    """name -> {"kind", "config"}: the built-in targets and the registered ones."""
    return {**{name: {"kind": kind, "config": {}} for name, kind in BUILTIN_TARGETS.items()}, **store.compute_targets()}
