"""Building environments: a cached virtualenv for local compute, an image ``mlpipe/env:<hash>`` for Docker.

The environment's content hash names what is built, so an unchanged environment is built once and
every later run reuses it. A build streams its log line by line, and records the resolved package
versions (pip freeze) beside what it built: in the virtualenv's ``mlpipe-build.json``, or in the
image's labels. Builds use the host's pip settings (index, mirrors, certificates), so a machine that
reaches packages through a mirror builds the same way in a container.

What gets installed follows model/packages.py: azureml-* packages are left out, conda packages go
through pip when there is no conda, an unavailable Python pin takes the nearest Python, and exact pins
written for another Python move to the nearest version with a wheel (compute/nearest_versions.py); the
build log says each. A virtualenv is made with uv when it is on PATH (much faster), else with venv and pip.
"""
from __future__ import annotations

import configparser
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.environment import AZURE_IMAGE_PREFIX
from mlpipe_jupyter.model.packages import InstallPlan, conda_tool, install_plan, resolve_python
from mlpipe_jupyter.running.step_output import stream_lines
from mlpipe_jupyter.secrets import redact_environment
from mlpipe_jupyter.store import hostname, process_start_time
from mlpipe_jupyter.compute.nearest_versions import exact_pin, nearest_versions
from mlpipe_jupyter.compute.process import start_process

DEFAULT_BASE_IMAGE = os.environ.get("MLPIPE_DOCKER_BASE_IMAGE", "mlpipe/base:bookworm")
IMAGE_REPOSITORY = "mlpipe/env"
IMAGE_VENV = "/opt/mlpipe/venv"
LABEL = "mlpipe.managed"  # on every container and image this package makes
DEFAULT_PIDS_LIMIT = 4096  # processes and threads in one container: room for data loaders, not a fork bomb
# A build runs pip as root inside its container: it needs to own and chmod what it installs, nothing more.
BUILD_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"]
FREEZE_MARKER = "--- mlpipe: resolved packages (pip freeze) ---"
BUILD_RECORD = "mlpipe-build.json"


class EnvironmentBuildError(UserError):
    """An environment that could not be built; the message names the step, the environment and why."""


@dataclass
class BuildResult:
    kind: str  # "venv" or "image"
    environment: str
    hash: str
    artifact: str  # the virtualenv's python, or the image tag
    python: str  # the interpreter a step runs with
    pip_freeze: list = field(default_factory=list)
    built: bool = False  # False when an earlier build was reused
    image_id: str | None = None
    log: list = field(default_factory=list)

    def wait_for_completion(self, show_output=False):
        """Builds finish before they return; kept for Azure ML's ``build(ws).wait_for_completion()``."""
        return self

    def to_dict(self):
        return {"kind": self.kind, "environment": self.environment, "hash": self.hash, "artifact": self.artifact,
                "image_id": self.image_id, "pip_freeze": self.pip_freeze, "built": self.built}

    def record(self, workspace, run_id: str) -> None:
        """Into the step run's details: what it ran with, and whether that was built for it."""
        if workspace is not None:
            workspace._store.update_run(run_id, details={"environment_build": self.to_dict()})


class Cancel:
    """A cancel flag that also stops whatever is running on its behalf (a pip process, a build container)."""

    def __init__(self):
        self._event = threading.Event()
        self._stoppers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self):
        with self._lock:
            self._event.set()
            stoppers = list(self._stoppers)
        for stop in stoppers:
            with contextlib.suppress(Exception):
                stop()

    @contextlib.contextmanager
    def stopping(self, stop: Callable[[], None]):
        with self._lock:
            self._stoppers.append(stop)
            already = self._event.is_set()
        if already:
            stop()
        try:
            yield
        finally:
            with self._lock:
                self._stoppers.remove(stop)


def _who(env, step) -> str:
    return f"Environment '{env.name}'" + (f" of step '{step}'" if step else "")


def lock_folder() -> Path:
    """This user's folder of build locks: private, so no other user of the machine can plant a link
    where a lock file is opened."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "mlpipe" / "locks"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


@contextlib.contextmanager
def _build_lock(key: str):
    """One build per artifact at a time, across threads and processes; the second waits and then reuses."""
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(key, threading.Lock())
    with lock:
        fd = os.open(lock_folder() / f"{key}.lock", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _requirements(packages) -> str:
    return "".join(f"{p}\n" for p in packages)


def _pip_errors(lines: list[str]) -> str:
    """The installer's own words for what went wrong: pip's ERROR lines, or uv's report (from its
    ``error:``/``×`` line on, which it may wrap over several lines), as one paragraph."""
    text = [ln.strip() for ln in lines if ln.strip()]
    errors = [ln for ln in text if ln.startswith("ERROR")]
    if errors:
        return " ".join(errors[-2:])
    start = next((i for i, ln in enumerate(text) if ln.startswith(("error:", "×"))), None)
    if start is not None:
        return " ".join(ln.lstrip("×╰─▶│├ ").strip() for ln in text[start:])
    return text[-1] if text else "no output"


# -- local: a cached virtualenv ----------------------------------------------------------------------------
def venv_root(workspace) -> Path:
    if workspace is not None:
        return Path(workspace.folder) / "environments"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlpipe" / "environments"


def venv_dir(workspace, env) -> Path:
    return venv_root(workspace) / f"venv-{env.content_hash}"


def cached_venv(workspace, env) -> BuildResult | None:
    """The finished build of this environment, or None when it must be built."""
    record = venv_dir(workspace, env) / BUILD_RECORD
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if not Path(data["python"]).exists():
        return None
    return BuildResult("venv", env.name, env.content_hash, data["python"], data["python"],
                       data.get("pip_freeze", []), False)


def check_local(env, step=None) -> None:
    """What can be told before running: a missing interpreter, or conda packages that only conda can
    give with no conda here; raises EnvironmentBuildError."""
    if not env.needs_build:
        path = env.python.interpreter_path
        if path and not (Path(path).exists() or shutil.which(path)):
            raise EnvironmentBuildError(f"{_who(env, step)} names the interpreter '{path}', which does not exist.")
        return
    plan = install_plan(env.python.conda_dependencies, with_conda=conda_tool() is not None)
    if plan.impossible:
        raise EnvironmentBuildError(
            f"{_who(env, step)} needs conda packages that pip cannot install ({', '.join(plan.impossible)}), and "
            "there is no conda, mamba or micromamba on this machine. Install one of them, install those "
            "programs yourself and drop them from the environment, or run the step on a Docker target whose "
            "image has them.")


def _run_logged(cmd, log, cancel: Cancel | None, lines: list, env=None) -> int:
    """Run a build command, logging its lines; a cancel kills it and whatever it started (say, a wheel build)."""
    proc = start_process(cmd, env=env)

    def kill():
        if proc.returncode is None:  # once reaped, the group's id may be someone else's
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    with (cancel.stopping(kill) if cancel else contextlib.nullcontext()):
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            log(line)
        return proc.wait()


def build_venv(workspace, env, log=None, step=None, cancel: Cancel | None = None) -> BuildResult:
    """The environment's virtualenv, built once per content hash and reused afterwards."""
    log = log or (lambda line: None)
    check_local(env, step)
    if not env.needs_build:
        python = env.python.interpreter_path or sys.executable
        return BuildResult("venv", env.name, env.content_hash, python, python, [], False)
    target = venv_dir(workspace, env)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(f"venv-{hashlib.sha256(str(target).encode()).hexdigest()[:24]}"):
        done = cached_venv(workspace, env)
        if done is not None:
            return done
        shutil.rmtree(target, ignore_errors=True)  # a build that was interrupted
        lines: list[str] = []
        deps = env.python.conda_dependencies
        tool = conda_tool()
        plan = install_plan(deps, with_conda=tool is not None)

        def say(line):
            lines.append(line)
            log(line)

        uv = None if plan.conda else find_uv()
        how = "conda" if plan.conda else "uv" if uv else "venv and pip"
        say(f"Building environment '{env.name}' ({env.content_hash[:12]}) as a virtualenv in {target} with {how}")
        for notice in plan.notices:
            say(f"mlpipe: {notice}")
        python = target / "bin" / "python"
        for_other_python = False
        if plan.conda:
            channels = [a for c in deps.channels for a in ("-c", c)]
            python_spec = [f"python={deps.python_version}"] if deps.python_version else ["python"]
            rc = _run_logged([tool, "create", "-y", "-p", str(target), *channels, *python_spec, *plan.conda, "pip"],
                             log, cancel, lines)
        else:
            base, notice = resolve_python(deps.python_version)
            if notice:
                say(f"mlpipe: {notice}")
            # Pins written for the Python an environment names, when it is here, are kept exactly; the
            # others were written for another Python (Azure's default when none is named).
            for_other_python = not deps.python_version or notice is not None
            cmd = ([uv, "venv", "--seed", "--python", base, str(target)] if uv else [base, "-m", "venv", str(target)])
            rc = _run_logged(cmd, log, cancel, lines, env=_uv_environ() if uv else None)
        if rc == 0 and plan.pip:
            req = target / "requirements.txt"
            packages = _nearest_pins(uv, python, plan.pip, say) if uv and for_other_python else plan.pip
            req.write_text(_requirements(packages))
            caps = []
            if plan.constraints:
                (target / "constraints.txt").write_text("\n".join(plan.constraints) + "\n")
                caps = ["-c", str(target / "constraints.txt")]
            if uv:
                cmd = [uv, "pip", "install", "--python", str(python), *_uv_pip_options(), "-r", str(req), *caps]
            else:
                cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
                       "-r", str(req), *caps]
            rc = _run_logged(cmd, log, cancel, lines, env=_uv_environ() if uv else None)
        if cancel is not None and cancel.is_set():
            shutil.rmtree(target, ignore_errors=True)
            raise EnvironmentBuildError(f"{_who(env, step)}: the build was canceled.")
        if rc != 0:
            hint = _without_uv_hint(python, plan.pip) if not uv and for_other_python and python.exists() else ""
            shutil.rmtree(target, ignore_errors=True)
            raise EnvironmentBuildError(f"{_who(env, step)} could not be built: {_pip_errors(lines)}{hint}")
        _link_package(python)
        freeze_cmd = ([uv, "pip", "freeze", "--python", str(python)] if uv else
                      [str(python), "-m", "pip", "freeze", "--disable-pip-version-check"])
        freeze = subprocess.run(freeze_cmd, capture_output=True, text=True,
                                env=_uv_environ() if uv else None).stdout.split()
        log(FREEZE_MARKER)
        for ln in freeze:
            log(ln)
        (target / "build.log").write_text("\n".join(lines) + "\n")
        record = {"environment": redact_environment(env.to_dict()), "hash": env.content_hash, "python": str(python),
                  "pip_freeze": freeze, "built": time.time()}
        tmp = target / f"{BUILD_RECORD}.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, target / BUILD_RECORD)  # written last: its presence means the build is complete
        return BuildResult("venv", env.name, env.content_hash, str(python), str(python), freeze, True, log=lines)


def _python_label(python: Path) -> str:
    done = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True)
    return f"Python {done.stdout.strip() or '?'}"


def _nearest_pins(uv: str, python: Path, requirements: list, say) -> list:
    """The requirements with exact pins that have no wheel for ``python`` moved to the nearest version
    that has one (compute/nearest_versions.py), each replacement said in the build log."""
    label = _python_label(python)
    result, error = nearest_versions(uv, str(python), label, requirements, _uv_pip_options(), _uv_environ())
    if error:
        say(f"mlpipe: could not look up a version with a build for {label} of {error}; installing as written.")
    for notice in result.notices:
        say(f"mlpipe: {notice}")
    return result.requirements


def _without_uv_hint(python: Path, requirements: list) -> str:
    """What to do when a build without uv fails on pins written for another Python."""
    pins = [r for r in requirements if exact_pin(r)]
    if not pins:
        return ""
    return (f" The environment was written for another Python than {_python_label(python)}, and an exact pin "
            f"({', '.join(pins)}) may have no build for it. Put uv on PATH (pip install uv, in an activated "
            "virtualenv) so that such pins are replaced by the nearest version that has one, or change the pins.")


def find_uv() -> str | None:
    """uv on PATH, else the one installed beside this interpreter (a virtualenv used without activating it)."""
    beside = Path(sys.executable).with_name("uv")
    return shutil.which("uv") or (str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None)


def _uv_environ() -> dict:
    """uv's environment: never a Python download (the interpreter is given), the host's certificates."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    _, pip_env, values = _pip_config()
    for key, value in values:
        if key.replace("_", "-") == "cert":
            env["SSL_CERT_FILE"] = value
        elif key.replace("_", "-") in ("timeout", "default-timeout"):
            env["UV_HTTP_TIMEOUT"] = str(value)
    return env


def _uv_pip_options() -> list[str]:
    """The host's pip settings (indexes, wheel folders, constraints, trusted hosts) as uv's options:
    uv does not read pip's configuration, and a build must reach packages the way pip would."""
    _, _, values = _pip_config()
    options: dict[str, list[str]] = {}
    flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
             "constraint": "--constraint", "trusted-host": "--allow-insecure-host"}
    for key, value in values:
        key = key.replace("_", "-")
        if key in flags:
            tokens = str(value).split()
            options[key] = tokens[-1:] if key == "index-url" else [*options.get(key, []), *tokens]
        elif key == "no-index" and str(value).lower() in ("1", "true", "yes", "on"):
            options[key] = []
    out = ["--no-index"] if "no-index" in options else []
    if "extra-index-url" in options:  # pip picks the best version across all its indexes; uv must be told to
        out += ["--index-strategy", "unsafe-best-match"]
    for key, tokens in options.items():
        for token in dict.fromkeys(tokens):
            if key in flags:
                out += [flags[key], token]
    return out


def _link_package(python: Path):
    """Make this package importable in the virtualenv (for ``Run.get_context()``) without exposing the
    rest of the host's site-packages: a link to the package folder alone, found through a .pth file."""
    package = Path(__file__).resolve().parents[1]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    shim = python.parent.parent / "mlpipe-lib"
    shim.mkdir(exist_ok=True)
    link = shim / package.name
    if not link.exists():
        link.symlink_to(package, target_is_directory=True)
    (Path(site) / "mlpipe_runtime.pth").write_text(str(shim) + "\n")


# -- Docker: an image per environment -----------------------------------------------------------------------
_clients = threading.local()


def docker_client():
    """A Docker client for this thread, against ``DOCKER_HOST`` or the default socket."""
    client = getattr(_clients, "client", None)
    if client is None:
        import docker

        client = _clients.client = docker.from_env(timeout=300)
    return client


def hardening(pids_limit: int | None = None) -> dict:
    """What every container we start gets: no new privileges (setuid binaries of the image cannot
    raise them), a bounded number of processes, and no capabilities beyond what is added back."""
    return {"security_opt": ["no-new-privileges"], "pids_limit": int(pids_limit or DEFAULT_PIDS_LIMIT),
            "cap_drop": ["ALL"]}


def runner_labels() -> dict:
    """Who started a container, so a later process can remove it if this one dies (see docker.sweep_orphans)."""
    pid = os.getpid()
    return {"mlpipe.runner_host": hostname(), "mlpipe.runner_pid": str(pid),
            "mlpipe.runner_start": str(process_start_time(pid) or "")}


def engine_problem() -> str | None:
    """Why no Docker engine can be used, or None when one answers."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the Python package 'docker' is not installed (pip install docker)"
    try:
        docker_client().ping()
    except Exception as e:  # noqa: BLE001 - every way of not answering means the same to the user
        _clients.client = None
        where = os.environ.get("DOCKER_HOST") or "the default socket"
        return f"no Docker engine answers at {where} ({type(e).__name__}: {str(e)[:160]})"
    return None


def image_id(name: str) -> str | None:
    import docker.errors

    try:
        return docker_client().images.get(name).id
    except docker.errors.ImageNotFound:
        return None


def missing_image_message(image: str, env, step) -> str:
    return (f"{_who(env, step)} needs the image '{image}', which is not on the Docker engine (nothing is pulled "
            f"automatically). Build or pull it first (`docker pull {image}`, or scripts/docker_engine.sh for "
            f"'{DEFAULT_BASE_IMAGE}'), or name a local image with env.docker.base_image.")


def base_image_of(env, target_image=None) -> str:
    """The image an environment builds on; Azure's images (DEFAULT_CPU_IMAGE, ...) cannot be pulled
    here, so they stand for the local base image."""
    image = env.docker.base_image or target_image or DEFAULT_BASE_IMAGE
    return DEFAULT_BASE_IMAGE if image.startswith(AZURE_IMAGE_PREFIX) else image


def image_tag(env, base: str) -> str:
    """``mlpipe/env:<content hash>``; a base image that comes from the target rather than the
    environment is part of what is built, so it joins the hash."""
    digest = env.content_hash
    if base != base_image_of(env):
        digest = hashlib.sha256(f"{digest}|{base}".encode()).hexdigest()[:32]
    return f"{IMAGE_REPOSITORY}:{digest}"


def image_needs_build(env) -> bool:
    deps = env.python.conda_dependencies
    return (not env.python.user_managed_dependencies
            and (install_plan(deps, with_conda=True).installs or bool(deps.python_version)))


def _check_python_version(env) -> str:
    """An image whose Python differs from the pin is used as it is, with a notice (as an unavailable
    pin takes the nearest Python locally)."""
    want = env.python.conda_dependencies.python_version
    if not want:
        return ""
    return (f'have=$("$PY" -c "import sys; print(\'%d.%d\' % sys.version_info[:2])"); case "$have" in '
            f'{shlex.quote(want)}|{shlex.quote(want)}.*) ;; *) echo "mlpipe: the environment asks for Python '
            f'{want}; the image has Python $have, which is used";; esac\n')


def _build_script(env, with_conda: InstallPlan, without_conda: InstallPlan) -> str:
    """In the container: conda when the image has it and the environment has conda packages, else a
    virtualenv with the conda packages installed by pip (requirements-conda.txt)."""
    deps = env.python.conda_dependencies
    script = 'PY=$(command -v python3 || command -v python) || { echo "mlpipe: the image has no python3"; exit 90; }\n'
    script += "".join(f"echo {shlex.quote('mlpipe: ' + n)}\n" for n in with_conda.notices)
    venv = (f'"$PY" -m venv --system-site-packages {IMAGE_VENV} || '
            '{ echo "mlpipe: the image\'s python cannot make a virtualenv (python3-venv missing?)"; exit 92; }\n')
    pip = (f'{IMAGE_VENV}/bin/python -m pip install --no-cache-dir --disable-pip-version-check '
           '--progress-bar off -r /mlpipe/build/{} || exit 93\n')
    if with_conda.conda:
        channels = " ".join(f"-c {shlex.quote(c)}" for c in deps.channels)
        py = shlex.quote(f"python={deps.python_version}") if deps.python_version else "python"
        pkgs = " ".join(shlex.quote(p) for p in with_conda.conda)
        fallback = "".join(f"echo {shlex.quote('mlpipe: ' + n)}; " for n in without_conda.notices
                           if n not in with_conda.notices)
        if without_conda.impossible:
            fallback += f'echo "mlpipe: no pip equivalent of {" ".join(without_conda.impossible)}"; exit 91; '
        script += ('CONDA=$(command -v mamba || command -v conda || command -v micromamba) || true\n'
                   f'if [ -n "$CONDA" ]; then\n"$CONDA" create -y -p {IMAGE_VENV} {channels} {py} {pkgs} pip || exit 93\n'
                   f'else {fallback}\n' + _check_python_version(env) + venv
                   + (pip.format("requirements-conda.txt") if _converted(with_conda, without_conda) else "") + "fi\n")
    else:
        script += _check_python_version(env) + venv
    if with_conda.pip:
        script += pip.format("requirements.txt")
    script += f'echo "{FREEZE_MARKER}"\n{IMAGE_VENV}/bin/python -m pip freeze --disable-pip-version-check\n'
    return script


def _converted(with_conda: InstallPlan, without_conda: InstallPlan) -> list:
    """The conda packages as pip installs them where there is no conda."""
    return [p for p in without_conda.pip if p not in with_conda.pip]


_BUILD_FAILURES = {
    90: "the image has no python3",
    91: "it needs conda packages that pip cannot install, and the image has neither conda nor mamba; use a base "
        "image with conda",
    92: "the image's python cannot make a virtualenv (is python3-venv installed?)",
}


def _pip_config() -> tuple[configparser.RawConfigParser, dict, list]:
    """The host's pip configuration files, its PIP_* variables (and certificate variables), and every
    (key, value) they set, the variables last."""
    parser = configparser.RawConfigParser()
    home = Path.home()
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [*(Path(d) / "pip" / "pip.conf" for d in xdg_dirs), Path("/etc/pip.conf"),
             home / ".pip" / "pip.conf", Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE") and os.environ["PIP_CONFIG_FILE"] != os.devnull:
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    parser.read([str(f) for f in files if f.is_file()])
    skip = {"PIP_CONFIG_FILE", "PIP_PYTHON", "PIP_TARGET", "PIP_PREFIX", "PIP_USER", "PIP_REQUIRE_VIRTUALENV"}
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") and k not in skip}
    values = [(k, v) for s in parser.sections() for k, v in parser.items(s)] + [(k[4:].lower(), v) for k, v in env.items()]
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if os.environ.get(var):
            env[var] = os.environ[var]
            values.append(("cert", os.environ[var]))
    return parser, env, values


def host_pip_settings() -> tuple[str, dict, list]:
    """The host's pip configuration as one pip.conf, its PIP_* variables, and the local paths they
    name (mirrors, wheel folders, certificates, constraints) to mount read-only at the same place."""
    parser, env, values = _pip_config()
    mounts = set()
    for key, value in values:
        for token in str(value).split():
            path = token[len("file://"):] if token.startswith("file://") else token
            if not path.startswith("/") or path == "/" or not os.path.exists(path):
                continue
            p = Path(path)
            if "index" in key.replace("_", "-") and p.name == "simple":
                p = p.parent  # a local index links to files beside its simple/ folder
            mounts.add(str(p))
    text = ""
    if parser.sections():
        import io

        buf = io.StringIO()
        parser.write(buf)
        text = buf.getvalue()
    return text, env, sorted(mounts)


def build_image(env, log=None, step=None, base=None, cancel: Cancel | None = None) -> BuildResult:
    """The environment's image, built once per content hash (and base image) and reused afterwards.

    A container from the base image makes a virtualenv at /opt/mlpipe/venv and installs the packages
    with the host's pip settings mounted; the container is then committed as ``mlpipe/env:<hash>``.
    """
    import docker.errors

    log = log or (lambda line: None)
    problem = engine_problem()
    if problem:
        raise EnvironmentBuildError(f"{_who(env, step)} cannot be built: {problem}.")
    client = docker_client()
    base = base or base_image_of(env)
    if env.docker.base_dockerfile:
        base = _build_dockerfile(env, client, log, step)
    base_id = image_id(base)
    if base_id is None:
        raise EnvironmentBuildError(missing_image_message(base, env, step))
    if not image_needs_build(env):
        python = env.python.interpreter_path if (not env.needs_build and env.python.interpreter_path) else "python3"
        return BuildResult("image", env.name, env.content_hash, base, python, [], False, image_id=base_id)
    tag = image_tag(env, base)
    with _build_lock(tag.replace("/", "_").replace(":", "_")):
        old = None
        with contextlib.suppress(docker.errors.ImageNotFound):
            old = client.images.get(tag)
        if old is not None and old.labels.get("mlpipe.base_id") == base_id:
            return BuildResult("image", env.name, env.content_hash, tag, f"{IMAGE_VENV}/bin/python",
                               json.loads(old.labels.get("mlpipe.pip_freeze", "[]")), False, image_id=old.id)
        log(f"Building environment '{env.name}' ({env.content_hash[:12]}) as image {tag} from {base}")
        result = _build_in_container(env, client, base, base_id, tag, log, step, cancel)
        if old is not None and old.id != result.image_id:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(old.id)  # the outdated build would otherwise dangle
        return result


def _build_in_container(env, client, base, base_id, tag, log, step, cancel) -> BuildResult:
    import docker.errors
    from docker.types import Mount

    pip_conf, pip_env, pip_mounts = host_pip_settings()
    with tempfile.TemporaryDirectory(prefix="mlpipe-build-") as tmp:
        deps = env.python.conda_dependencies
        with_conda, without_conda = install_plan(deps, with_conda=True), install_plan(deps, with_conda=False)
        (Path(tmp) / "requirements.txt").write_text(_requirements(with_conda.pip))
        (Path(tmp) / "requirements-conda.txt").write_text(_requirements(_converted(with_conda, without_conda)))
        (Path(tmp) / "build.sh").write_text(_build_script(env, with_conda, without_conda))
        # Settings go through a file the script reads, not the container's environment: a commit
        # would keep the container's variables (and its mounts) in the image.
        settings = {**pip_env, "PIP_ROOT_USER_ACTION": "ignore", "PYTHONDONTWRITEBYTECODE": "1"}
        if pip_conf:
            (Path(tmp) / "pip.conf").write_text(pip_conf)
            settings["PIP_CONFIG_FILE"] = "/mlpipe/build/pip.conf"
        (Path(tmp) / "settings.sh").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items()))
        mounts = [Mount("/mlpipe/build", tmp, type="bind", read_only=True)]
        mounts += [Mount(p, p, type="bind", read_only=True) for p in pip_mounts]
        base_config = client.images.get(base).attrs.get("Config") or {}
        container = client.containers.create(base, ["sh", "-ec", ". /mlpipe/build/settings.sh; . /mlpipe/build/build.sh"],
                                             mounts=mounts, user="0:0", init=True, detach=True,
                                             labels={LABEL: "build", "mlpipe.env_hash": env.content_hash,
                                                     **runner_labels()},
                                             **hardening(), cap_add=BUILD_CAPABILITIES)
        lines: list[str] = []
        try:
            with (cancel.stopping(lambda: container.kill()) if cancel else contextlib.nullcontext()):
                container.start()
                for line in stream_lines(container.logs(stream=True, follow=True)):
                    lines.append(line)
                    log(line)
                code = container.wait().get("StatusCode", 1)
            if cancel is not None and cancel.is_set():
                raise EnvironmentBuildError(f"{_who(env, step)}: the build was canceled.")
            if code != 0:
                why = _BUILD_FAILURES.get(code) or f"pip could not install its packages: {_pip_errors(lines)}"
                raise EnvironmentBuildError(f"{_who(env, step)} could not be built on image '{base}': {why}")
            freeze = lines[lines.index(FREEZE_MARKER) + 1:] if FREEZE_MARKER in lines else []
            base_path = next((e[5:] for e in base_config.get("Env") or [] if e.startswith("PATH=")),
                             "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            repo, _, version = tag.partition(":")
            labels = {LABEL: "env", "mlpipe.env_hash": env.content_hash, "mlpipe.base_id": base_id,
                      "mlpipe.base": base, "mlpipe.pip_freeze": json.dumps(freeze)}
            image = container.commit(repository=repo, tag=version, conf={"Labels": labels, "User": base_config.get("User") or "root"},
                                     changes=[f"ENV PATH={IMAGE_VENV}/bin:{base_path}", f"ENV VIRTUAL_ENV={IMAGE_VENV}",
                                              'CMD ["python"]'])
            return BuildResult("image", env.name, env.content_hash, tag, f"{IMAGE_VENV}/bin/python", freeze, True,
                               image_id=image.id, log=lines)
        finally:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)


def _build_dockerfile(env, client, log, step) -> str:
    """``env.docker.base_dockerfile`` built as ``mlpipe/env-base:<hash>`` (its FROM must be local)."""
    text = env.docker.base_dockerfile
    if os.path.isfile(str(text)):
        text = Path(text).read_text()
    tag = f"{IMAGE_REPOSITORY}-base:{hashlib.sha256(text.encode()).hexdigest()[:32]}"
    with _build_lock(tag.replace("/", "_").replace(":", "_")):
        if image_id(tag) is None:
            _run_dockerfile_build(env, client, text, tag, log, step)
    return tag


def _run_dockerfile_build(env, client, text, tag, log, step):
    import io

    import docker.errors

    log(f"Building the base image of environment '{env.name}' from its Dockerfile as {tag}")
    lines: list[str] = []
    try:
        for chunk in client.api.build(fileobj=io.BytesIO(text.encode()), tag=tag, rm=True, forcerm=True,
                                      decode=True, labels={LABEL: "base"}):
            for line in str(chunk.get("stream", "")).splitlines():
                lines.append(line)
                log(line)
            if "error" in chunk:
                raise EnvironmentBuildError(f"{_who(env, step)}: its Dockerfile did not build: {chunk['error'].strip()}")
    except docker.errors.APIError as e:
        raise EnvironmentBuildError(f"{_who(env, step)}: its Dockerfile did not build: {e.explanation or e}") from None


# -- a step that builds its environment first ---------------------------------------------------------------
class PreparedHandle:
    """Runs ``prepare`` (a build, streaming its log as the step's first lines), then ``launch`` with its
    result; afterwards it is the launched handle. A build error ends the step with that error."""

    def __init__(self, prepare: Callable[[Callable[[str], None], Cancel], object], launch: Callable[[object], object]):
        import queue

        self._queue: queue.Queue = queue.Queue()
        self.cancel_token = Cancel()
        self.error: str | None = None
        self._inner = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._prepare, self._launch = prepare, launch
        threading.Thread(target=self._run, name="prepare-step", daemon=True).start()

    def _run(self):
        launched = False
        try:
            value = self._prepare(self._queue.put, self.cancel_token)
            if not self.cancel_token.is_set():
                self._inner = self._launch(value)
                if self.cancel_token.is_set():
                    self._inner.cancel()
                launched = True
        except UserError as e:
            self.error = str(e)
            self._queue.put(f"ERROR: {e}")
        except Exception as e:  # noqa: BLE001 - shown as the step's error rather than lost in a thread
            self.error = f"{type(e).__name__}: {e}"
            self._queue.put(f"ERROR: {self.error}")
        finally:
            self._queue.put(None)
            self._ready.set()
        if launched:
            # A child started with a parent-death signal dies when the thread that started it ends:
            # this thread lives until the step has ended.
            self._finished.wait()

    def chunks(self) -> Iterator[bytes]:
        while (line := self._queue.get()) is not None:
            yield line.encode("utf-8", "replace") + b"\n"
        if self._inner is not None:
            yield from self._inner.chunks()

    def wait(self) -> int:
        self._ready.wait()
        if self._inner is None:
            return 1 if self.error or not self.cancel_token.is_set() else -15
        try:
            return self._inner.wait()
        finally:
            self._finished.set()

    def cancel(self, *args) -> None:
        self.cancel_token.set()
        if self._inner is not None:
            self._inner.cancel(*args)

    def process_info(self) -> dict:
        return {}
