"""Turns a run's raw results into ``report.md`` (tables, target checks) and ``chart.png``."""

from __future__ import annotations

import statistics
from pathlib import Path

REFERENCE = "websockets"
# The targets apply to the servers the project supports; granian is measured for comparison.
SUPPORTED_SERVERS = ("daphne", "uvicorn")

# (workload, figure, label, higher is better)
COLUMNS = [
    ("W1", "echoes_per_second", "W1 echoes/s", True),
    ("W1", "p50_us", "W1 p50 µs", False),
    ("W1", "p99_us", "W1 p99 µs", False),
    ("W2", "p50_us", "W2 p50 µs", False),
    ("W3", "megabytes_per_second", "W3 MB/s", True),
    ("W4", "kib_per_connection", "W4 KiB/conn", False),
    ("W4", "open_seconds", "W4 open s", False),
    ("W4c", "kib_per_connection", "W4c KiB/conn", False),
    ("W5", "echoes_per_second", "W5 echoes/s", True),
    ("W5", "cpu_us_per_echo", "W5 server CPU µs/echo", False),
    ("W1", "server_cpu", "W1 server CPU (cores)", False),
    ("W6", "deliveries_per_second", "W6 deliveries/s", True),
]
# The chat room's channel layers, as the W6 targets name them.
CHAT_LAYERS = ("in-memory layer", "Redis layer")


def figures(results: dict, target: str, workload: str, figure: str) -> list[float]:
    return [run[figure] for run in results["runs"].get(target, {}).get(workload, [])]


def median(results: dict, target: str, workload: str, figure: str) -> float | None:
    values = figures(results, target, workload, figure)
    return statistics.median(values) if values else None


def paired_ratio(results: dict, a: str, b: str, workload: str, figure: str) -> float | None:
    """``a``'s figure over ``b``'s: the median of the ratios of runs taken together (the same
    round of W1 or W3, or the same repetition). The machine's slower and faster minutes move both
    runs of a pair alike, so they cancel here, where a ratio of medians keeps them."""
    tops, bottoms = figures(results, a, workload, figure), figures(results, b, workload, figure)
    if not tops or not bottoms:
        return None
    return statistics.median(
        top / bottom for top, bottom in zip(tops, bottoms, strict=True) if bottom
    )


def number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def cell(results: dict, target: str, workload: str, figure: str) -> str:
    values = figures(results, target, workload, figure)
    if not values:
        return "–"
    middle = statistics.median(values)
    text = number(middle)
    if len(values) > 1:
        text += f" <sub>({number(min(values))}–{number(max(values))})</sub>"
    reference = median(results, REFERENCE, workload, figure)
    if reference and figure not in ("server_cpu",):
        text += f" **{middle / reference:.2f}×**"
    return text


def target_checks(results: dict) -> list[tuple[str, float | None, str, bool | None]]:
    """Each target of the performance issue: (what, measured ratio, bound, met)."""

    def ratio(a: str, b: str, workload: str, figure: str) -> float | None:
        return paired_ratio(results, a, b, workload, figure)

    checks = []

    def check(
        what: str, value: float | None, bound: str, at_least: float | None, at_most: float | None
    ) -> None:
        met = None
        if value is not None and (at_least is not None or at_most is not None):
            met = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
        checks.append((what, value, bound, met))

    for server in SUPPORTED_SERVERS:
        project, raw = f"project / {server}", f"raw ASGI / {server}"
        if project not in results["runs"] or raw not in results["runs"]:
            continue
        check(
            f"{project} W1 vs raw ASGI",
            ratio(project, raw, "W1", "echoes_per_second"),
            "≥ 0.90",
            0.9,
            None,
        )
        check(
            f"{project} W3 vs raw ASGI",
            ratio(project, raw, "W3", "megabytes_per_second"),
            "≥ 0.90",
            0.9,
            None,
        )
        check(
            f"{project} W2 p50 vs raw ASGI",
            ratio(project, raw, "W2", "p50_us"),
            "≤ 1.15",
            None,
            1.15,
        )
        metrics_off = f"project, metrics off / {server}"
        if metrics_off in results["runs"]:
            check(
                f"{project} W1 with metrics vs without",
                ratio(project, metrics_off, "W1", "echoes_per_second"),
                "≥ 0.97",
                0.97,
                None,
            )
    check(
        "project / daphne W1 vs stock Channels / daphne",
        ratio("project / daphne", "stock Channels / daphne", "W1", "echoes_per_second"),
        "≥ 2.00",
        2.0,
        None,
    )
    check(
        "project, SQLite / daphne W1 vs stock Channels, SQLite / daphne",
        ratio(
            "project, SQLite / daphne",
            "stock Channels, SQLite / daphne",
            "W1",
            "echoes_per_second",
        ),
        "≥ 2.00",
        2.0,
        None,
    )
    for layer in CHAT_LAYERS:
        check(
            f"chat / daphne, {layer} W6 vs stock chat",
            ratio(
                f"chat / daphne, {layer}",
                f"stock chat / daphne, {layer}",
                "W6",
                "deliveries_per_second",
            ),
            "≥ 1.50",
            1.5,
            None,
        )
    check(
        "project / daphne W2 p50 vs websockets",
        ratio("project / daphne", REFERENCE, "W2", "p50_us"),
        "≤ 2.50",
        None,
        2.5,
    )
    fastest = fastest_project(results)
    if fastest:
        check(
            f"fastest ({fastest}) W1 vs websockets",
            ratio(fastest, REFERENCE, "W1", "echoes_per_second"),
            "≥ 0.90",
            0.9,
            None,
        )
        check(
            f"fastest ({fastest}) W3 vs websockets",
            ratio(fastest, REFERENCE, "W3", "megabytes_per_second"),
            "≥ 0.90",
            0.9,
            None,
        )
        check(
            f"fastest ({fastest}) W2 p50 vs websockets",
            ratio(fastest, REFERENCE, "W2", "p50_us"),
            "≤ 1.50",
            None,
            1.5,
        )
    for server in SUPPORTED_SERVERS:
        check(
            f"project / {server} W4c KiB per compressed idle connection vs websockets",
            ratio(f"project / {server}", REFERENCE, "W4c", "kib_per_connection"),
            "≤ 1.00",
            None,
            1.0,
        )
    fastest_compressed = fastest_project(results, "W5")
    if fastest_compressed:
        check(
            f"fastest ({fastest_compressed}) W5 vs websockets",
            ratio(fastest_compressed, REFERENCE, "W5", "echoes_per_second"),
            "≥ 0.90",
            0.9,
            None,
        )
    check(
        "project / daphne W5 vs websockets (reported)",
        ratio("project / daphne", REFERENCE, "W5", "echoes_per_second"),
        "–",
        None,
        None,
    )
    check(
        "project / daphne idle KiB per connection",
        median(results, "project / daphne", "W4", "kib_per_connection"),
        "≤ 20",
        None,
        20.0,
    )
    return checks


def fastest_project(results: dict, workload: str = "W1") -> str | None:
    """The project under the supported server with the most echoes in ``workload``."""
    supported = [f"project / {server}" for server in SUPPORTED_SERVERS]
    projects = [name for name in results["runs"] if name in supported]
    measured = [
        (median(results, name, workload, "echoes_per_second") or 0, name) for name in projects
    ]
    return max(measured)[1] if measured else None


def write_report(results: dict, out: Path) -> None:
    names = list(results["runs"])
    lines = ["# channels-echo benchmark", ""]
    machine = results["machine"]
    lines += [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"Python {machine['python']}, Linux {machine['kernel']}; "
        f"autobahn NVX: {machine['autobahn_nvx']}.",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()) + ".",
        f"Repetitions: {results['repetitions']}{' (quick run)' if results['quick'] else ''}, "
        + "".join(
            f"{key} in {count} round{'s' if count != 1 else ''}, "
            for key, count in results.get("rounds", {}).items()
        )
        + "interleaved; medians, with the spread (min–max) in small type and the ratio of "
        f"medians to `{REFERENCE}` in bold.",
        "",
        "Workloads: " + "; ".join(f"**{k}** {v}" for k, v in results["workloads"].items()) + ".",
        "",
    ]
    lines.append("| target | " + " | ".join(label for _, _, label, _ in COLUMNS) + " | errors |")
    lines.append("|---" * (len(COLUMNS) + 2) + "|")
    for name in names:
        errors = sum(
            run.get("errors", 0) for runs in results["runs"][name].values() for run in runs
        )
        row = [cell(results, name, w, f) for w, f, _, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(row) + f" | {errors} |")
    lines += [
        "",
        "## Targets",
        "",
        "Each ratio is the median of the ratios between runs taken together: the same round "
        "(W1, W3), or the same repetition.",
        "",
        "| target | measured | bound | met |",
        "|---|---|---|---|",
    ]
    for what, value, bound, met in target_checks(results):
        shown = "–" if value is None else f"{value:.2f}"
        verdict = "–" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {what} | {shown} | {bound} | {verdict} |")
    lines += ["", "## Is the load generator the bottleneck?", ""]
    lines += [
        "W1 driven from one load-generator process and from two (25 connections each). If two "
        "processes get no more echoes than one, the server, not the client, sets the pace.",
        "",
        "| target | 1 process | 2 processes | ratio |",
        "|---|---|---|---|",
    ]
    for check in results["loadgen_check"]:
        lines.append(
            f"| {check['target']} | {check['one_process']:,.0f}/s "
            f"| {check['two_processes']:,.0f}/s "
            f"| {check['two_processes'] / check['one_process']:.2f} |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    draw_chart(results, out / "chart.png")


def draw_chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in results["runs"] if figures(results, name, "W1", "echoes_per_second")]
    throughput = [median(results, n, "W1", "echoes_per_second") or 0 for n in names]
    latency = [median(results, n, "W2", "p50_us") or 0 for n in names]
    colours = [
        "#6b7280" if n == REFERENCE else "#0b63c5" if n.startswith("project") else "#9ca3af"
        for n in names
    ]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    left.barh(names, throughput, color=colours)
    left.set_title("W1: echoes per second, 50 connections (higher is better)")
    right.barh(names, latency, color=colours)
    right.set_title("W2: median round trip in µs, 1 connection (lower is better)")
    for axis in (left, right):
        axis.invert_yaxis()
        axis.grid(axis="x", alpha=0.3)
    right.set_yticklabels([])
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    # Re-render a finished run: python -m bench.report bench/results/<timestamp>
    import json
    import sys

    run_dir = Path(sys.argv[1])
    write_report(json.loads((run_dir / "results.json").read_text()), run_dir)
    print(run_dir / "report.md")
