"""A real two-node Ray cluster on 127.0.0.1 for the Ray backend's tests: a head with 2 CPUs and a
worker node with 1 CPU and the custom resource ``worker_node``, each with a temp folder of its own.

Both run ``ray start --block`` in a session of their own, and every process they start is found by
its parent (or by its temp folder), so stopping the cluster stops exactly those processes by PID:
never ``ray stop``, which stops every Ray process of the machine.

Keeping it on loopback: with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` every Ray process takes
127.0.0.1 as its address, but ``ray start`` then refuses to add a worker node; with it on, the worker
takes the machine's outward address even when given ``--node-ip-address 127.0.0.1``. So the worker's
``ray start`` alone runs with the setting on and its address lookup answering 127.0.0.1, and the
processes it starts (its dashboard agent among them) keep the setting off.
"""
from __future__ import annotations

import json
import os
import shutil
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
START_ATTEMPTS = 3
LOOPBACK_WORKER = ("import sys, ray._private.ray_constants as c, ray._private.services as s; c.ENABLE_RAY_CLUSTER = True; "
                   "s.node_ip_address_from_perspective = lambda *a, **k: '127.0.0.1'; "
                   "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()")


class ClusterProblem(Exception):
    """The cluster could not be started here (said why)."""


class RayCluster:
    def __init__(self):
        if not RAY.exists():
            raise ClusterProblem("Ray is not installed in this environment (pip install 'mlpipe-jupyter[ray]')")
        self.root = Path(tempfile.mkdtemp(prefix="mlray", dir="/tmp"))  # short: Ray's socket paths must fit
        self.procs: list[subprocess.Popen] = []
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        try:
            gcs, dashboard = free_port(), free_port()
            self.address = f"http://127.0.0.1:{dashboard}"
            self._start_node(lambda folder: [
                str(RAY), "start", "--head", "--block", "--port", str(gcs), "--dashboard-host", "127.0.0.1",
                "--dashboard-port", str(dashboard), "--num-cpus", "2", "--temp-dir", folder,
                "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port())],
                env, "head", 1)
            self._start_node(lambda folder: [
                sys.executable, "-c", LOOPBACK_WORKER, "start", "--block", "--address", f"127.0.0.1:{gcs}",
                "--num-cpus", "1", "--resources", json.dumps({WORKER_RESOURCE: 1}), "--temp-dir", folder,
                "--dashboard-agent-listen-port", str(free_port())],
                env, "worker", 2)
        except BaseException:
            self.stop()
            raise

    def _start_node(self, command, env, name: str, nodes: int):
        """Start a node with a temp folder of its own and wait until the cluster has ``nodes`` nodes.
        Ray gives a node 30 s to register, too few on a loaded machine: a start that gave up is tried again."""
        for attempt in range(START_ATTEMPTS):
            folder = str(self.root / f"{name}{attempt}")
            proc = self._start(command(folder), env, f"{name}{attempt}")
            try:
                self.wait_for_nodes(nodes)
                return
            except ClusterProblem:
                if attempt == START_ATTEMPTS - 1 or proc.poll() is None:
                    raise
                self.procs.remove(proc)
                self._kill(self.pids(folder))  # what the start that gave up left running

    def _start(self, cmd, env, name):
        with open(self.root / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        proc.log = Path(log.name)
        self.procs.append(proc)
        return proc

    def nodes(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.address}/api/v0/nodes", timeout=10) as r:
            return [n for n in json.load(r)["data"]["result"]["result"] if n["state"] == "ALIVE"]

    def wait_for_nodes(self, count: int):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise ClusterProblem(f"'ray start' exited with {dead[0].returncode}: {self.log_tail(dead[0])}")
            try:
                if len(self.nodes()) >= count:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise ClusterProblem(f"the Ray cluster had no {count} nodes after {START_SECONDS} s: {self.log_tail()}")

    def log_tail(self, proc=None) -> str:
        """The end of a ``ray start``'s output (of every one when ``proc`` is None)."""
        return " | ".join(p.log.read_text(errors="replace")[-400:] for p in ([proc] if proc else self.procs))

    def pids(self, folder=None) -> set[int]:
        """Every live process of this cluster: the ``ray start`` processes, their descendants, and
        anything whose command line names one of its temp folders (or only ``folder``'s)."""
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
            if str(folder or self.root).encode() in cmdline:
                marked.add(int(entry.name))
        found, todo = set(), ([] if folder else [p.pid for p in self.procs]) + sorted(marked)
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.add(pid)
                todo += parents.get(pid, [])
        return {pid for pid in found if pid != os.getpid() and pid_alive(pid)}

    @staticmethod
    def _kill(pids):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> list[int]:
        """Stop every process of the cluster by PID; returns those still alive afterwards (none, normally)."""
        pids = self.pids()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(p.poll() is None for p in self.procs):
            time.sleep(0.2)
        self._kill(pids | self.pids())
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.pids():
            time.sleep(0.2)
        left = sorted(self.pids())
        if not left:
            shutil.rmtree(self.root, ignore_errors=True)
        return left
