"""Starts the processes of a distributed step (PyTorch or MPI style) and waits for them, as one step.

It runs where the step runs (on this machine, in a container, as a Ray job) by file path, in whatever
interpreter is there, so it uses the standard library only. Each process gets the variables the
frameworks read: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``NODE_RANK``,
``MASTER_ADDR``, ``MASTER_PORT`` (``torch.distributed``'s ``env://``), and for MPI also
``OMPI_COMM_WORLD_*`` and ``PMI_RANK``/``PMI_SIZE``. Rank 0 prints into the step's log; every other
rank writes ``std_log_process_<rank>.txt`` (Azure's name) into the rank log folder.

One launcher starts the processes of one node (``--node-rank``) or of every node at once on one
machine (``--all-nodes``). Across machines the launcher of node 0 picks the rendezvous address and a
free port and writes them to ``--rendezvous`` (a file on storage every node shares); the others wait
for it. When a rank fails the others are stopped, and the launcher exits as that rank did; a signal to
the launcher is passed to every rank.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

RANK_LOGS = "user_logs"  # in the step's run folder, beside Azure's user_logs/std_log.txt
GRACE_SECONDS = 5  # between SIGTERM and SIGKILL for ranks left running after another failed
RENDEZVOUS_WAIT_SECONDS = 600
TAIL_LINES = 5  # of a failed rank's log, repeated into the step's log


def launch_command(spread: dict, python: str, run_dir: str, command: list[str], launcher: str = __file__,
                   node_rank: int | None = None, rendezvous: str | None = None, reach: str = "") -> list[str]:
    """The command that starts ``command`` as the processes of a document's ``distributed`` entry: every
    node's here (``node_rank`` None), or one node's of a job spread over machines."""
    args = [python, "-I", launcher, "--kind", spread["kind"], "--per-node", str(spread["process_count_per_node"]),
            "--nodes", str(spread.get("node_count", 1)), "--rank-logs", os.path.join(run_dir, RANK_LOGS)]
    if node_rank is None:
        args.append("--all-nodes")
    else:
        args += ["--node-rank", str(node_rank), "--rendezvous", rendezvous or "", "--reach", reach]
    return [*args, "--", *command]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="launch_ranks")
    parser.add_argument("--kind", choices=("pytorch", "mpi"), required=True)
    parser.add_argument("--per-node", type=int, required=True)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--node-rank", type=int, default=0)
    parser.add_argument("--all-nodes", action="store_true", help="start every node's processes here")
    parser.add_argument("--rank-logs", required=True)
    parser.add_argument("--rendezvous", help="file naming node 0's address and port, for the other nodes")
    parser.add_argument("--reach", default="", help="a host every node reaches, to find this node's address")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command to run")
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def own_address(reach: str) -> str:
    """The address other nodes reach this one at: the one its route to ``reach`` leaves from."""
    if not reach or reach in ("localhost", "127.0.0.1", "::1"):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((reach, 9))  # no packet is sent: a UDP connect only picks the route
        return s.getsockname()[0]


def publish(path: str, text: str) -> None:
    """Write a whole file at once: a local path (shared folder) or, off a shared filesystem, an fsspec URL."""
    if "://" in path:
        import fsspec  # there where steps exchange files through a staging URL

        with fsspec.open(path, "w") as f:
            f.write(text)
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read(path: str) -> str:
    if "://" in path:
        import fsspec

        with fsspec.open(path) as f:
            return f.read().decode()
    with open(path) as f:
        return f.read()


def rendezvous(args) -> tuple[str, int]:
    """(MASTER_ADDR, MASTER_PORT): chosen here on one machine or by node 0, read from its file by the others."""
    if args.all_nodes or args.nodes == 1:
        return "127.0.0.1", free_port()
    if not args.rendezvous:
        raise SystemExit("launch_ranks: more than one node needs --rendezvous")
    if args.node_rank == 0:
        chosen = {"addr": own_address(args.reach), "port": free_port()}
        publish(args.rendezvous, json.dumps(chosen))
        return chosen["addr"], chosen["port"]
    deadline = time.monotonic() + RENDEZVOUS_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            chosen = json.loads(read(args.rendezvous))
            return chosen["addr"], int(chosen["port"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    raise SystemExit(f"launch_ranks: node {args.node_rank} waited {RENDEZVOUS_WAIT_SECONDS} s for node 0 to start")


def rank_environ(args, rank: int, local_rank: int, node_rank: int, addr: str, port: int) -> dict:
    world = args.per_node * args.nodes
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(local_rank),
               LOCAL_WORLD_SIZE=str(args.per_node), NODE_RANK=str(node_rank), GROUP_RANK=str(node_rank),
               MASTER_ADDR=addr, MASTER_PORT=str(port))
    if args.kind == "mpi":
        env.update(OMPI_COMM_WORLD_RANK=str(rank), OMPI_COMM_WORLD_SIZE=str(world),
                   OMPI_COMM_WORLD_LOCAL_RANK=str(local_rank), OMPI_COMM_WORLD_LOCAL_SIZE=str(args.per_node),
                   OMPI_COMM_WORLD_NODE_RANK=str(node_rank), PMI_RANK=str(rank), PMI_SIZE=str(world))
    return env


def rank_log(args, rank: int) -> str:
    return os.path.join(args.rank_logs, f"std_log_process_{rank}.txt")


def start_ranks(args, addr: str, port: int, procs: dict[int, subprocess.Popen]) -> None:
    """Into ``procs`` as each starts, so a signal arriving meanwhile reaches those already running."""
    os.makedirs(args.rank_logs, exist_ok=True)
    node_ranks = range(args.nodes) if args.all_nodes else [args.node_rank]
    for node_rank in node_ranks:
        for local_rank in range(args.per_node):
            rank = node_rank * args.per_node + local_rank
            env = rank_environ(args, rank, local_rank, node_rank, addr, port)
            if rank == 0:  # the step's own log
                procs[rank] = subprocess.Popen(args.command, env=env, stdin=subprocess.DEVNULL)
            else:
                with open(rank_log(args, rank), "wb") as log:
                    procs[rank] = subprocess.Popen(args.command, env=env, stdin=subprocess.DEVNULL,
                                                   stdout=log, stderr=subprocess.STDOUT)


def stop(procs: dict[int, subprocess.Popen], sig=signal.SIGTERM) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass


def tell_failure(args, rank: int, code: int) -> None:
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    print(f"launch_ranks: rank {rank} {how}; stopping the other ranks.", file=sys.stderr, flush=True)
    if rank != 0:
        try:
            with open(rank_log(args, rank), errors="replace") as f:
                tail = f.read().splitlines()[-TAIL_LINES:]
        except OSError:
            tail = []
        for line in tail:
            print(f"[rank {rank}] {line}", file=sys.stderr, flush=True)


def wait_all(args, procs: dict[int, subprocess.Popen]) -> int:
    """The first failure's exit status (others stopped then), else 0."""
    first_failure = None
    stop_at = None
    while any(p.poll() is None for p in procs.values()):
        for rank, proc in procs.items():
            code = proc.poll()
            if code not in (None, 0) and first_failure is None:
                first_failure = code
                tell_failure(args, rank, code)
                stop(procs)
                stop_at = time.monotonic() + GRACE_SECONDS
        if stop_at is not None and time.monotonic() > stop_at:
            stop(procs, signal.SIGKILL)
        time.sleep(0.05)
    if first_failure is None:
        failed = [(r, p.returncode) for r, p in procs.items() if p.returncode != 0]
        if failed:
            first_failure = failed[0][1]
            tell_failure(args, *failed[0])
    return first_failure or 0


def main(argv=None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    addr, port = rendezvous(args)
    procs: dict[int, subprocess.Popen] = {}

    def forward(signum, frame):
        stop(procs, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    start_ranks(args, addr, port, procs)
    code = wait_all(args, procs)
    if code < 0:  # end as the rank did, so the step reads "killed by signal N"
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
