"""Run every workload against every target, interleaved, and write the report.

    python -m bench.run            # the full run (about 40 minutes on 2 cores)
    python -m bench.run --quick    # a smoke run (about three minutes)

W1 and W3 run first, in rounds: each round starts every target once and measures it, the order
reversed every other round. The other workloads follow in repetitions: targets in turn, A B C
... A B C ..., each starting fresh on a free loopback port. Medians and the spread (min-max) are
reported with every figure's ratio to the ``websockets`` reference. Results go to
``bench/results/<timestamp>/``: ``results.json``, ``report.md`` and ``chart.png``.

Each target runs the workloads it names (``bench/targets.py``): the echo's, W1 alone in settings
with a database, or the chat room's W6. When a target's channel layer is Redis, the run starts a
Redis server of its own (``tests/redis_server.py``) and stops it at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.report import write_report
from bench.targets import TARGETS, RunningServer, Target, start
from tests import redis_server

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    connections: int
    size: int = 32
    binary: bool = False
    seconds: float = 10.0
    json: bool = False
    compress: bool = False
    # Measured in a server process of its own: memory the process freed after an earlier
    # workload would otherwise be reused and not show.
    fresh_process: bool = False
    # Measured in rounds of its own instead of within each target's repetition, this many per
    # repetition: each round gives every target one run in a server process of its own, the
    # targets seconds apart (``rounds``). On two cores W1 differs by several per cent from one
    # run to the next, from one server start to the next and from one minute to the next
    # (docs/performance.md), more than the 3% some targets must tell apart; W3 runs at one of
    # two speeds, set when the server process starts, so it needs many starts.
    rounds: int = 0

    @property
    def idle(self) -> bool:
        return self.key.startswith("W4")

    @property
    def chat(self) -> bool:
        return self.key.startswith("W6")


FULL = [
    Workload("W1", "50 connections, 32 B text ping-pong", 50, seconds=3, rounds=5),
    Workload("W2", "1 connection, 32 B text ping-pong", 1, seconds=5),
    Workload(
        "W3", "10 connections, 64 KiB binary ping-pong", 10, 65536, True, seconds=3, rounds=3
    ),
    Workload("W4", "5,000 idle connections", 5000),
    Workload(
        "W4c",
        "5,000 idle connections, permessage-deflate",
        5000,
        compress=True,
        fresh_process=True,
    ),
    Workload(
        "W5",
        "50 connections, 4 KiB JSON-like text ping-pong, permessage-deflate",
        50,
        4096,
        seconds=10,
        json=True,
        compress=True,
    ),
    Workload("W6", "20 connections in one chat room, each message sent to all 20", 20),
]
QUICK = [
    Workload("W1", FULL[0].title, 50, seconds=2, rounds=1),
    Workload("W2", FULL[1].title, 1, seconds=1),
    Workload("W3", FULL[2].title, 10, 65536, True, seconds=2, rounds=1),
    Workload("W4", "500 idle connections", 500),
    Workload(
        "W4c", "500 idle connections, permessage-deflate", 500, compress=True, fresh_process=True
    ),
    Workload("W5", FULL[5].title, 50, 4096, seconds=2, json=True, compress=True),
    Workload("W6", FULL[6].title, 20, seconds=2),
]


def loadgen(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "bench.loadgen", *arguments]


def ping_pong(server: RunningServer, workload: Workload, processes: int = 1) -> dict:
    """One load-generator process per share of the connections; their results are summed."""
    share = workload.connections // processes
    command = loadgen(
        *("ping-pong", "--url", server.url, "--connections", str(share)),
        *("--size", str(workload.size), "--seconds", str(workload.seconds)),
        *(["--binary"] if workload.binary else []),
        *(["--json"] if workload.json else []),
        *(["--compress"] if workload.compress else []),
    )
    cpu_before, wall_before = server.cpu_seconds(), time.perf_counter()
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)
    ]
    outputs = [
        json.loads(worker.communicate(timeout=workload.seconds + 120)[0]) for worker in workers
    ]
    wall = time.perf_counter() - wall_before
    server_cpu = (server.cpu_seconds() - cpu_before) / wall
    echoes = sum(output["echoes"] for output in outputs)
    seconds = max(output["seconds"] for output in outputs)
    return {
        "echoes_per_second": echoes / seconds,
        "megabytes_per_second": echoes * workload.size / seconds / 1e6,
        "p50_us": max(output["p50_us"] for output in outputs),
        "p99_us": max(output["p99_us"] for output in outputs),
        "errors": sum(output["errors"] for output in outputs),
        "server_cpu": server_cpu,
        "cpu_us_per_echo": server_cpu * wall / max(echoes, 1) * 1e6,
    }


def chat(server: RunningServer, workload: Workload) -> dict:
    """Every member's receipts of the room's messages, each in a room of its own: with Redis,
    the groups of earlier server processes are still there."""
    command = loadgen(
        *("chat", "--url", server.room_url(f"w6{uuid.uuid4().hex}")),
        *("--connections", str(workload.connections), "--seconds", str(workload.seconds)),
    )
    cpu_before, wall_before = server.cpu_seconds(), time.perf_counter()
    output = json.loads(
        subprocess.run(
            command, stdout=subprocess.PIPE, text=True, timeout=workload.seconds + 120, check=True
        ).stdout
    )
    server_cpu = (server.cpu_seconds() - cpu_before) / (time.perf_counter() - wall_before)
    return {
        "deliveries_per_second": output["deliveries"] / output["seconds"],
        "messages_per_second": output["messages"] / output["seconds"],
        "p50_us": output["p50_us"],
        "p99_us": output["p99_us"],
        "errors": output["errors"],
        "server_cpu": server_cpu,
    }


def idle(server: RunningServer, workload: Workload) -> dict:
    rss_before = server.rss_bytes()
    worker = subprocess.Popen(
        loadgen(
            *("idle", "--url", server.url, "--connections", str(workload.connections)),
            *(["--compress"] if workload.compress else []),
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if worker.stdout is None or worker.stdin is None:
        raise RuntimeError("the idle load generator has no pipes")
    opened = json.loads(worker.stdout.readline())["opened"]
    time.sleep(1)  # let the server settle after the burst of handshakes
    rss_open = server.rss_bytes()
    worker.stdin.write("done\n")
    worker.stdin.flush()
    result = json.loads(worker.communicate(timeout=120)[0])
    return {
        "kib_per_connection": (rss_open - rss_before) / max(opened, 1) / 1024,
        "open_seconds": result["open_seconds"],
        "opened": opened,
        "errors": result["errors"] + workload.connections - opened,
    }


WARM_UP = Workload("warm-up", "", 10, seconds=1)
CHAT_WARM_UP = Workload("W6 warm-up", "", 20, seconds=1)


def warm_start(target: Target, log_dir: Path) -> RunningServer:
    server = start(target, log_dir)
    if target.chat:
        chat(server, CHAT_WARM_UP)
    else:
        ping_pong(server, WARM_UP)
    return server


def runs_workload(target: Target, workload: Workload) -> bool:
    return workload.key in target.workloads and (target.compression or not workload.compress)


def repeated(target: Target, workloads: list[Workload]) -> list[Workload]:
    """What ``target`` runs in each repetition: its workloads not measured in rounds."""
    return [w for w in workloads if not w.rounds and runs_workload(target, w)]


def measure(target: Target, workloads: list[Workload], log_dir: Path) -> dict[str, dict]:
    """One repetition of the workloads not measured in rounds, on one server start (and one
    more for each workload that needs a process of its own)."""
    server, fresh = warm_start(target, log_dir), True
    try:
        results = {}
        for workload in repeated(target, workloads):
            if workload.fresh_process and not fresh:
                server.stop()
                server = warm_start(target, log_dir)
            if workload.idle:
                results[workload.key] = idle(server, workload)
            elif workload.chat:
                results[workload.key] = chat(server, workload)
            else:
                results[workload.key] = ping_pong(server, workload)
            fresh = False
        return results
    finally:
        server.stop()


def rounds(
    targets: list[Target], workload: Workload, count: int, log_dir: Path
) -> dict[str, list[dict]]:
    """``workload`` in ``count`` rounds, each running every target once in a fresh server
    process, in the order of TARGETS and reversed every other round.

    Targets compared with each other are neighbours in TARGETS, so within a round they run
    seconds apart, and each target's run i pairs with its neighbour's run i: the ratio of the
    two cancels the machine's slower and faster minutes (``bench.report.paired_ratio``). Reversing
    the order keeps them neighbours while no target always runs first.
    """
    runs: dict[str, list[dict]] = {target.name: [] for target in targets}
    started = time.monotonic()
    for index in range(count):
        order = targets if index % 2 == 0 else targets[::-1]
        print(f"[round {index + 1:2d}/{count}] {time.monotonic() - started:5.0f}s  {workload.key}")
        for target in order:
            server = warm_start(target, log_dir)
            try:
                result = ping_pong(server, workload)
            finally:
                server.stop()
            runs[target.name].append(result)
            print(
                f"          {target.name}: {result['echoes_per_second']:,.0f}/s, "
                f"{result['errors']} errors"
            )
    return runs


def loadgen_check(targets: list[Target], workload: Workload, log_dir: Path) -> list[dict]:
    """W1 from one and from two load-generator processes: if two are not faster, one suffices."""
    checks = []
    for target in targets:
        server = start(target, log_dir)
        try:
            one = ping_pong(server, workload, processes=1)["echoes_per_second"]
            two = ping_pong(server, workload, processes=2)["echoes_per_second"]
        finally:
            server.stop()
        checks.append({"target": target.name, "one_process": one, "two_processes": two})
        print(f"  loadgen check {target.name}: 1 process {one:,.0f}/s, 2 processes {two:,.0f}/s")
    return checks


@contextmanager
def channel_layers(targets: list[Target], directory: Path) -> Iterator[list[Target]]:
    """``targets``, those on Redis pointed at a Redis server started for the run, if any."""
    if not any(target.on_redis for target in targets):
        yield targets
        return
    with redis_server.running(directory) as redis:
        yield [
            dataclasses.replace(
                target, settings=(*target.settings, ("ECHO_CHAT_CHANNEL_LAYER", redis.url))
            )
            if target.on_redis
            else target
            for target in targets
        ]


def machine() -> dict[str, object]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    import os

    import autobahn.websocket

    packages = (
        "django",
        "channels",
        "daphne",
        "autobahn",
        "twisted",
        "uvicorn",
        "granian",
        "websockets",
        "uvloop",
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "autobahn_nvx": autobahn.websocket.USES_NVX,
        "packages": {name: metadata.version(name) for name in packages},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short repetition (a smoke run)")
    parser.add_argument("--repetitions", type=int, default=None)
    parser.add_argument(
        "--only",
        action="append",
        metavar="TARGET",
        help="run only this target (repeatable); names may contain commas",
    )
    args = parser.parse_args()
    # A progress display: each line as it happens, also when written to a file or a pipe.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    workloads = QUICK if args.quick else FULL
    repetitions = args.repetitions or (1 if args.quick else 3)
    unknown = set(args.only or ()) - {t.name for t in TARGETS}
    if unknown:
        parser.error(f"no such target: {', '.join(sorted(unknown))}")
    targets = [t for t in TARGETS if not args.only or t.name in args.only]
    out = RESULTS_DIR / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = out / "server-logs"
    log_dir.mkdir(parents=True)

    runs: dict[str, dict[str, list[dict]]] = {
        t.name: {w.key: [] for w in workloads if runs_workload(t, w)} for t in targets
    }
    started = time.monotonic()
    with channel_layers(targets, out / "redis") as targets:
        for workload in workloads:
            in_rounds = [t for t in targets if runs_workload(t, workload)]
            if workload.rounds and in_rounds:
                for name, results in rounds(
                    in_rounds, workload, repetitions * workload.rounds, log_dir
                ).items():
                    runs[name][workload.key] = results
        in_repetitions = [t for t in targets if repeated(t, workloads)]
        steps, step = repetitions * len(in_repetitions), 0
        for repetition in range(repetitions if in_repetitions else 0):
            # Rotate the order each repetition, so no target always runs first or last.
            turn = repetition % len(in_repetitions)
            order = in_repetitions[turn:] + in_repetitions[:turn]
            for target in order:
                step += 1
                elapsed = time.monotonic() - started
                print(
                    f"[{step:2d}/{steps}] {elapsed:5.0f}s  repetition {repetition + 1}  "
                    f"{target.name}"
                )
                for key, result in measure(target, workloads, log_dir).items():
                    runs[target.name][key].append(result)
                    print(
                        f"          {key}: "
                        + ", ".join(f"{k}={v:,.1f}" for k, v in result.items())
                    )

    # The reference, the default server, and whichever target went fastest in W1: if one client
    # process keeps up with the fastest, it keeps up with all.
    echoing = [t for t in targets if runs[t.name].get("W1")]
    fastest = max(
        echoing,
        key=lambda t: statistics.median(run["echoes_per_second"] for run in runs[t.name]["W1"]),
        default=None,
    )
    checked = [t for t in echoing if t.reference or t.name == "project / daphne" or t is fastest]
    checks = loadgen_check(checked, workloads[0], log_dir)
    results = {
        "machine": machine(),
        "quick": args.quick,
        "repetitions": repetitions,
        "rounds": {w.key: repetitions * w.rounds for w in workloads if w.rounds},
        "workloads": {w.key: w.title for w in workloads},
        "targets": {t.name: {"group": t.group, "reference": t.reference} for t in targets},
        "runs": runs,
        "loadgen_check": checks,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_report(results, out)
    print(f"done in {time.monotonic() - started:.0f}s: {out}/report.md")


if __name__ == "__main__":
    main()
