"""Docker compute overhead: one step through our Docker compute against a bare ``docker run``, and an
environment's first build against a run that reuses it.

    python benchmarks/docker_overhead.py [--repeats 5] [--image mlpipe/base:bookworm]

Needs a running Docker engine and the base image (scripts/docker_engine.sh sets both up). Rows:

- bare docker run: ``docker run --rm`` of the same script, same image, the script folder mounted read-only.
- docker compute: ``Experiment.submit(ScriptRunConfig(..., compute_target="docker"))`` until the run
  ends, everything included (snapshot, run history, container create/start/logs/remove).
- local compute: the same step as a subprocess, to show what the run bookkeeping alone costs.
- first build / cached: a step whose environment (pip ``six``) is new, then the same step again.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCRIPT = "import os\nprint('hello from', os.getcwd())\n"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(fn, repeats) -> float:
    fn()  # warm: first-use costs (page cache, imports) are not per-step overhead
    return statistics.median(timed(fn) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image", default=None)
    args = parser.parse_args()

    from mlpipe_jupyter import CondaDependencies, Environment, Experiment, ScriptRunConfig, Workspace
    from mlpipe_jupyter.compute import envbuild

    problem = envbuild.engine_problem()
    image = args.image or envbuild.DEFAULT_BASE_IMAGE
    if problem or envbuild.image_id(image) is None:
        sys.exit(f"docker_overhead: needs a Docker engine and the image {image}: "
                 f"{problem or 'image missing'} (run scripts/docker_engine.sh)")

    root = Path(tempfile.mkdtemp(prefix="mlpipe-bench-docker-"))
    src = root / "src"
    src.mkdir()
    (src / "step.py").write_text(SCRIPT)
    ws = Workspace.create("bench", path=root / "ws")
    exp = Experiment(ws, "bench")
    plain = Environment("plain-image")
    plain.docker.enabled = True
    plain.docker.base_image = image

    def bare():
        subprocess.run(["docker", "run", "--rm", "--init", "-v", f"{src}:/w:ro", "-w", "/w", image,
                        "python3", "step.py"], check=True, capture_output=True)

    def ours(target, env=None):
        def go():
            run = exp.submit(ScriptRunConfig(str(src), "step.py", compute_target=target, environment=env))
            run.wait_for_completion(raise_on_error=True)
        return go

    rows = {}
    rows["bare docker run"] = median_of(bare, args.repeats)
    rows["docker compute"] = median_of(ours("docker", plain), args.repeats)
    rows["local compute"] = median_of(ours("local"), args.repeats)

    fresh = Environment(f"bench-{uuid.uuid4().hex[:6]}")
    fresh.docker.enabled = True
    fresh.python.user_managed_dependencies = False
    fresh.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"])
    fresh.environment_variables["BENCH_RUN"] = uuid.uuid4().hex  # a new hash: nothing cached
    first = timed(ours("docker", fresh))
    cached = statistics.median(timed(ours("docker", fresh)) for _ in range(args.repeats))
    local_env = fresh.clone(f"{fresh.name}-local")
    local_env.docker.enabled = False
    local_first = timed(ours("local", local_env))
    local_cached = statistics.median(timed(ours("local", local_env)) for _ in range(args.repeats))

    base = rows["bare docker run"]
    print(f"Docker compute overhead (median of {args.repeats}, image {image})\n")
    print(f"{'row':<34}{'seconds':>9}{'ratio':>9}")
    for name, seconds in rows.items():
        print(f"{name:<34}{seconds:>9.3f}{seconds / base:>8.2f}x")
    print(f"\n{'environment build (pip six)':<34}{'seconds':>9}{'ratio':>9}")
    print(f"{'docker: first run (builds image)':<34}{first:>9.3f}{'1.00x':>9}")
    print(f"{'docker: cached image':<34}{cached:>9.3f}{cached / first:>8.2f}x")
    print(f"{'local: first run (builds venv)':<34}{local_first:>9.3f}{'1.00x':>9}")
    print(f"{'local: cached venv':<34}{local_cached:>9.3f}{local_cached / local_first:>8.2f}x")
    client = envbuild.docker_client()
    client.images.remove(envbuild.image_tag(fresh, envbuild.base_image_of(fresh)))
    import shutil

    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
