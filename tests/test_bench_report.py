"""How the benchmark report turns runs into the ratios its targets are checked against."""

from __future__ import annotations

import pytest

from bench.report import paired_ratio, target_checks


def runs(*echoes: float) -> list[dict[str, float]]:
    return [{"echoes_per_second": value, "errors": 0} for value in echoes]


def results(targets: dict[str, list[dict[str, float]]]) -> dict:
    """A run's results with W1 runs of each target, in round order."""
    return {"runs": {name: {"W1": w1} for name, w1 in targets.items()}}


def test_a_ratio_pairs_runs_taken_together() -> None:
    # A slow minute halves both runs of the second pair, and their ratio is still 0.9.
    measured = results({"a": runs(90, 45, 90), "b": runs(100, 50, 100)})
    assert paired_ratio(measured, "a", "b", "W1", "echoes_per_second") == pytest.approx(0.9)


def test_a_ratio_is_the_median_of_the_pairs() -> None:
    measured = results({"a": runs(80, 95, 90, 99, 91), "b": runs(100, 100, 100, 100, 100)})
    assert paired_ratio(measured, "a", "b", "W1", "echoes_per_second") == pytest.approx(0.91)


def test_a_target_without_runs_has_no_ratio() -> None:
    measured = results({"a": runs(90), "b": []})
    assert paired_ratio(measured, "a", "b", "W1", "echoes_per_second") is None
    assert paired_ratio(measured, "a", "missing", "W1", "echoes_per_second") is None


def test_runs_that_do_not_pair_are_an_error() -> None:
    measured = results({"a": runs(90, 91), "b": runs(100)})
    with pytest.raises(ValueError, match="shorter"):
        paired_ratio(measured, "a", "b", "W1", "echoes_per_second")


def test_the_w1_target_reads_the_paired_ratio() -> None:
    # Rounds: the project's one bad run, then a slow minute for both. The pairs' median is
    # 0.95; the medians taken apart (70 and 80) would give 0.875 and miss the bound.
    measured = results(
        {"project / uvicorn": runs(95, 62, 70), "raw ASGI / uvicorn": runs(100, 80, 72)}
    )
    checks = {what: (value, met) for what, value, _, met in target_checks(measured)}
    value, met = checks["project / uvicorn W1 vs raw ASGI"]
    assert value == pytest.approx(0.95)
    assert met is True


def test_the_chat_targets_compare_each_layer_with_itself() -> None:
    """W6 holds the fast chat room on each channel layer to 1.5 times the stock one on the same
    layer, pairing the runs of each repetition."""
    measured = {
        "runs": {
            name: {"W6": [{"deliveries_per_second": value} for value in deliveries]}
            for name, deliveries in {
                "chat / daphne, in-memory layer": (300, 160),
                "stock chat / daphne, in-memory layer": (200, 100),
                "chat / daphne, Redis layer": (140, 70),
                "stock chat / daphne, Redis layer": (100, 50),
            }.items()
        }
    }
    checks = {what: (value, met) for what, value, _, met in target_checks(measured)}
    assert checks["chat / daphne, in-memory layer W6 vs stock chat"] == (
        pytest.approx(1.55),
        True,
    )
    assert checks["chat / daphne, Redis layer W6 vs stock chat"] == (pytest.approx(1.4), False)
