"""A real two-node Ray cluster on 127.0.0.1 for the Ray backend's tests: a head with 2 CPUs and a
worker node with 1 CPU and the custom resource ``worker_node``, each with a temp folder of its own.

Both run ``ray start --block`` in a session of their own, and every process they start is found by
its parent (or by its temp folder), so stopping the cluster stops exactly those processes by PID:
never ``ray stop``, which stops every Ray process of the machine.

Keeping it on loopback: the head with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` binds 127.0.0.1; a
worker refuses to start under that setting, and with it on takes the machine's outward address even
when given ``--node-ip-address 127.0.0.1``, so the worker's ``ray start`` runs with Ray's address
lookup answering 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from helpers import free_port, pid_alive

RAY = Path(sys.executable).with_name("ray")
WORKER_RESOURCE = "worker_node"
START_SECONDS = 120  # a guard against a hang on a loaded machine, not a measure
LOOPBACK_WORKER = ("import sys, ray._private.services as s; "
                   "s.node_ip_address_from_perspective = lambda *a, **k: '127.0.0.1'; "
                   "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()")


class ClusterProblem(Exception):
    """The cluster could not be started here (said why)."""


class RayCluster:
    def __init__(self):
        if not RAY.exists():
            raise ClusterProblem("Ray is not installed in this environment (pip install 'mlpipe-jupyter[ray]')")
        self.root = Path(tempfile.mkdtemp(prefix="mlray", dir="/tmp"))  # short: Ray's socket paths must fit
        self.head_dir, self.worker_dir = self.root / "h", self.root / "w"
        gcs, dashboard = free_port(), free_port()
        self.address = f"http://127.0.0.1:{dashboard}"
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        self.procs: list[subprocess.Popen] = []
        self._start([str(RAY), "start", "--head", "--block", "--port", str(gcs), "--dashboard-host", "127.0.0.1",
                     "--dashboard-port", str(dashboard), "--num-cpus", "2", "--temp-dir", str(self.head_dir),
                     "--ray-client-server-port", str(free_port()),
                     "--dashboard-agent-listen-port", str(free_port())], env, "head")
        self.wait_for_nodes(1)
        self._start([sys.executable, "-c", LOOPBACK_WORKER, "start", "--block", "--address", f"127.0.0.1:{gcs}",
                     "--num-cpus", "1", "--resources", json.dumps({WORKER_RESOURCE: 1}),
                     "--temp-dir", str(self.worker_dir), "--dashboard-agent-listen-port", str(free_port())],
                    {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}, "worker")
        self.wait_for_nodes(2)

    def _start(self, cmd, env, name):
        log = open(self.root / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           env=env, start_new_session=True))

    def nodes(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.address}/api/v0/nodes", timeout=10) as r:
            return [n for n in json.load(r)["data"]["result"]["result"] if n["state"] == "ALIVE"]

    def wait_for_nodes(self, count: int):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise ClusterProblem(f"'ray start' exited with {dead[0].returncode}: {self.log_tail()}")
            try:
                if len(self.nodes()) >= count:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise ClusterProblem(f"the Ray cluster had no {count} nodes after {START_SECONDS} s: {self.log_tail()}")

    def log_tail(self) -> str:
        return " | ".join(p.read_text(errors="replace")[-600:] for p in sorted(self.root.glob("*.log")))

    def pids(self) -> set[int]:
        """Every live process of this cluster: the ``ray start`` processes, their descendants, and
        anything whose command line names one of its temp folders."""
        parents, marked = {}, set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
            if str(self.root).encode() in cmdline:
                marked.add(int(entry.name))
        found, todo = set(), [p.pid for p in self.procs] + sorted(marked)
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.add(pid)
                todo += parents.get(pid, [])
        return {pid for pid in found if pid != os.getpid() and pid_alive(pid)}

    def stop(self) -> list[int]:
        """Stop every process of the cluster by PID; returns those still alive afterwards (none, normally)."""
        pids = self.pids()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(p.poll() is None for p in self.procs):
            time.sleep(0.2)
        for pid in pids | self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.pids():
            time.sleep(0.2)
        return sorted(self.pids())
