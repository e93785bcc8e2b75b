"""Load on the REST trigger: 200 POSTs to a published pipeline from a client with 20 in flight, against a
real ``mlpipe serve`` in a fresh workspace, then a wait until every run has ended.

The pipeline is one step that prints. Baseline, same server, same client, same concurrency, just before
the load: 200 GETs of ``/mlpipe/api/pipelines`` (a read of the store and nothing else). Nothing may be
lost: every POST answered 200, every run recorded, every run Completed, or the script fails.

    python benchmarks/rest_trigger_load.py [--requests 200] [--in-flight 20]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ws_path: Path, tmp: Path, token: str, max_concurrent_runs: int | None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    for name in ("config", "runtime", "data"):
        (tmp / name).mkdir(parents=True)
    if max_concurrent_runs is not None:
        (tmp / "config" / "jupyter_server_config.json").write_text(
            json.dumps({"MlpipeServer": {"max_concurrent_runs": max_concurrent_runs}}))
    env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTER_DATA_DIR=str(tmp / "data"), JUPYTER_PLATFORM_DIRS="1", JUPYTER_TOKEN=token)
    port = free_port()
    root = ["--allow-root"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe_jupyter.cli", "serve", "--workspace", str(ws_path),
                             "--port", str(port), *root], env=env, stdin=subprocess.DEVNULL,
                            stdout=(tmp / "serve.out").open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/mlpipe/api/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"mlpipe serve exited:\n{(tmp / 'serve.out').read_text()}")
        try:
            if requests.get(url + "openapi.json", headers={"Authorization": f"token {token}"}, timeout=5).ok:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("mlpipe serve did not answer within 90 s")


def fire(method, url, token, count, in_flight, body=None):
    """``count`` requests with ``in_flight`` at a time; (answers' status codes and json, latencies in ms, seconds)."""
    session_headers = {"Authorization": f"token {token}"}

    def one(_):
        start = time.perf_counter()
        answer = requests.request(method, url, headers=session_headers, json=body, timeout=120)
        return answer.status_code, answer.json(), (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        results = list(pool.map(one, range(count)))
    return results, [r[2] for r in results], time.perf_counter() - start


def p95(values):
    return statistics.quantiles(values, n=100)[94]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--max-concurrent-runs", type=int, default=None,
                        help="the server's MlpipeServer.max_concurrent_runs (default: its default, the CPU count)")
    args = parser.parse_args()
    from mlpipe_jupyter import Pipeline, PythonScriptStep, Workspace

    token = secrets.token_hex(16)
    load_before = os.getloadavg()[0]  # a busy machine's figures are not comparable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ws = Workspace.create("load", path=tmp / "ws")
        (tmp / "src").mkdir()
        (tmp / "src" / "hello.py").write_text(textwrap.dedent("print('hello')\n"))
        step = PythonScriptStep("hello.py", name="hello", source_directory=str(tmp / "src"), allow_reuse=False)
        published = Pipeline(ws, [step]).publish(name="hello")
        proc, url = start_server(ws.path, tmp / "server", token, args.max_concurrent_runs)
        try:
            _, get_lat, _ = fire("GET", url + "pipelines", token, args.requests, args.in_flight)
            started = time.perf_counter()
            results, post_lat, post_seconds = fire("POST", url + f"pipelines/{published.id}", token, args.requests,
                                                   args.in_flight, body={"ExperimentName": "load"})
            answered = [r for r in results if r[0] == 200]
            ids = {r[1]["Id"] for r in answered}
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                rows = ws._store.list_runs(experiment="load")
                if len(rows) >= len(ids) and all(r["status"] in ("Completed", "Failed", "Canceled") for r in rows):
                    break
                time.sleep(0.5)
            total = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(30)
        rows = ws._store.list_runs(experiment="load")
        recorded = {r["id"] for r in rows}
        completed = {r["id"] for r in rows if r["status"] == "Completed"}
        width = 38
        print(f"{'REST trigger load':<{width}} value")
        print(f"{'requests sent (in flight)':<{width}} {args.requests} ({args.in_flight})")
        print(f"{'max_concurrent_runs':<{width}} {args.max_concurrent_runs or f'default ({os.cpu_count()} CPUs)'}")
        print(f"{'requests answered 200':<{width}} {len(answered)}")
        print(f"{'runs recorded':<{width}} {len(recorded)}")
        print(f"{'runs completed':<{width}} {len(completed)}")
        print(f"{'time to answer all POSTs':<{width}} {post_seconds:.2f} s")
        print(f"{'POSTs answered per second':<{width}} {len(answered) / post_seconds:.1f}")
        print(f"{'first POST to last run ended':<{width}} {total:.1f} s")
        print(f"{'runs completed per second':<{width}} {len(completed) / total:.2f}")
        print(f"{'trigger latency p50 / p95':<{width}} {statistics.median(post_lat):.1f} / {p95(post_lat):.1f} ms")
        print(f"{'GET pipelines latency p50 / p95':<{width}} {statistics.median(get_lat):.1f} / {p95(get_lat):.1f} ms")
        print(f"{'load average before (1 min)':<{width}} {load_before:.2f}")
        print(f"{'trigger p50 / GET pipelines p50':<{width}} {statistics.median(post_lat) / statistics.median(get_lat):.2f}x")
        lost = (args.requests - len(answered), len(ids - recorded), len(recorded - completed))
        if any(lost):
            sys.exit(f"LOST: {lost[0]} requests not answered 200, {lost[1]} answered runs not recorded, "
                     f"{lost[2]} runs not Completed")


if __name__ == "__main__":
    main()
