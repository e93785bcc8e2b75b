"""Ray compute against local compute: per-step overhead, a wide pipeline, and log-line latency.

    python benchmarks/ray_overhead.py [--repeats 5] [--width 32] [--cpu-seconds 0.5] [--address URL]

Without ``--address`` it starts the tests' two-node cluster on 127.0.0.1 (a head with 2 CPUs, a
worker node with 1; tests/compute/ray_cluster.py) and stops it at the end. Rows:

- one step: a trivial one-step pipeline until the run ends (median of ``--repeats``, after one warm-up),
  on local compute and on the Ray target; also on a Ray target with a ``staging_url`` (a local-folder
  fsspec URL: the cost of shipping the step's files and the wrapper, as a cluster without a shared
  filesystem pays it, minus the network).
- distributed: a 2-process PyTorchConfiguration step whose ranks meet over sockets, local and on Ray.
- wide pipeline: ``--width`` independent CPU-bound steps (a busy loop of ``--cpu-seconds``), on the
  Ray target (each step asks for 1 CPU: 3 at once on the cluster) and on local compute limited to the
  same 3 at once.
- log latency: a Ray step prints 100 lines 20 ms apart, each carrying ``time.time()``; the notebook
  monitor (its widget model, in this process) records when each lands.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "compute")]

TRIVIAL = "print('hello')\n"
BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end:\n    pass\n"
CHATTY = ("import time\ntime.sleep(1.0)\nfor i in range(100):\n"
          "    print(f'line {i} {time.time():.6f}', flush=True)\n    time.sleep(0.02)\n")
CLUSTER_CPUS = 3
MEET = (ROOT / "tests" / "compute" / "distributed_scripts.py")


def run_steps(ws, steps) -> float:
    from mlpipe_jupyter import Experiment, Pipeline

    start = time.perf_counter()
    run = Experiment(ws, "bench").submit(Pipeline(ws, steps))
    run.wait_for_completion(timeout_seconds=1800)
    elapsed = time.perf_counter() - start
    assert run.get_status() == "Completed", run.get_details().get("error")
    return elapsed


def one_step(ws, src, target, repeats, script="trivial.py", runconfig=None) -> float:
    from mlpipe_jupyter import PythonScriptStep

    def once():
        return run_steps(ws, [PythonScriptStep(script, source_directory=str(src), compute_target=target,
                                               allow_reuse=False, runconfig=runconfig)])

    once()  # warm: first-use costs (a worker process, page cache) are not per-step overhead
    return statistics.median(once() for _ in range(repeats))


def wide(ws, src, target, width) -> float:
    from mlpipe_jupyter import PythonScriptStep

    return run_steps(ws, [PythonScriptStep("busy.py", name=f"busy{i}", source_directory=str(src),
                                           compute_target=target, allow_reuse=False) for i in range(width)])


def log_latency(ws, src, target) -> list[float]:
    from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep
    from mlpipe_jupyter.notebook.monitor import RunMonitor

    step = PythonScriptStep("chatty.py", source_directory=str(src), compute_target=target, allow_reuse=False)
    run = Experiment(ws, "bench").submit(Pipeline(ws, [step]))
    latencies: list[float] = []

    def on_flush(step_name, lines):
        now = time.time()
        for line in lines:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "line":
                latencies.append((now - float(parts[2])) * 1000)

    monitor = RunMonitor(run)
    monitor.flush_hooks.append(on_flush)
    run.wait_for_completion(timeout_seconds=600)
    monitor.sync()
    assert len(latencies) == 100, f"only {len(latencies)} of 100 lines reached the monitor"
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--cpu-seconds", type=float, default=0.5)
    parser.add_argument("--address", help="a running cluster's dashboard; default: start the tests' cluster")
    args = parser.parse_args()

    from mlpipe_jupyter import ComputeTarget, LocalCompute, RayCompute, Workspace

    cluster = None
    if args.address is None:
        from ray_cluster import RayCluster

        cluster = RayCluster()
    try:
        root = Path(tempfile.mkdtemp(prefix="mlpipe-bench-ray-"))
        src = root / "src"
        src.mkdir()
        (src / "trivial.py").write_text(TRIVIAL)
        (src / "busy.py").write_text(BUSY.format(seconds=args.cpu_seconds))
        (src / "chatty.py").write_text(CHATTY)
        from distributed_scripts import RENDEZVOUS
        import textwrap

        (src / "meet.py").write_text(textwrap.dedent(RENDEZVOUS))
        ws = Workspace.create("bench", path=root / "ws")
        ray = ComputeTarget.create(ws, "ray", RayCompute.provisioning_configuration(
            args.address or cluster.address, num_cpus=1))
        staged = ComputeTarget.create(ws, "staged", RayCompute.provisioning_configuration(
            args.address or cluster.address, num_cpus=1, staging_url=f"file://{root / 'staging'}",
            python=sys.executable))
        local3 = ComputeTarget.create(ws, "local3", LocalCompute.provisioning_configuration(max_concurrency=CLUSTER_CPUS))
        cpu_before = os.times()

        local_step = one_step(ws, src, "local", args.repeats)
        ray_step = one_step(ws, src, ray, args.repeats)
        staged_step = one_step(ws, src, staged, args.repeats)
        from mlpipe_jupyter import PyTorchConfiguration, ScriptRunConfig

        two = ScriptRunConfig(str(src), "meet.py", distributed_job_config=PyTorchConfiguration(process_count=2)).run_config
        local_two = one_step(ws, src, "local", args.repeats, "meet.py", two)
        ray_two = one_step(ws, src, ray, args.repeats, "meet.py", two)
        local_wide = wide(ws, src, local3, args.width)
        ray_wide = wide(ws, src, ray, args.width)
        latencies = log_latency(ws, src, ray)
        used = sum(os.times()[:4]) - sum(cpu_before[:4])
    finally:
        if cluster is not None:
            left = cluster.stop()
            if left:
                print(f"warning: processes of the cluster outlived it: {left}")

    p95 = statistics.quantiles(latencies, n=100)[94]
    print(f"{'row':<44} {'local':>9} {'ray':>9} {'ray/local':>10}")
    print(f"{'one step, median of ' + str(args.repeats) + ' (s)':<44} {local_step:>9.2f} {ray_step:>9.2f} "
          f"{ray_step / local_step:>9.2f}x")
    print(f"{'ray per-step overhead over local (s)':<44} {'':>9} {ray_step - local_step:>9.2f}")
    print(f"{'one step, staged (no shared filesystem) (s)':<44} {local_step:>9.2f} {staged_step:>9.2f} "
          f"{staged_step / local_step:>9.2f}x   ({staged_step / ray_step:.2f}x the shared-filesystem Ray step)")
    print(f"{'2-process PyTorchConfiguration step (s)':<44} {local_two:>9.2f} {ray_two:>9.2f} "
          f"{ray_two / local_two:>9.2f}x")
    print(f"{f'{args.width} x {args.cpu_seconds} CPU-s steps, 3 at once (s)':<44} {local_wide:>9.2f} "
          f"{ray_wide:>9.2f} {ray_wide / local_wide:>9.2f}x")
    print(f"{'log line to monitor, Ray step: p50 / p95 (ms)':<44} {'':>9} "
          f"{statistics.median(latencies):>5.0f} / {p95:.0f}")
    print(f"(this process and its children used {used:.1f} CPU-seconds; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
