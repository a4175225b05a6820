"""The report's box plots: computed on the server from every value, shipped as five numbers per box."""

from __future__ import annotations

import numpy as np

from app.web import charts
from evals import CaseRow


def test_box_stats_are_tukeys_box_over_every_value() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 40.0, -30.0]
    box = charts.box_stats(values)
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    assert (box["q1"], box["median"], box["q3"]) == (q1, med, q3)
    assert (box["lowerfence"], box["upperfence"]) == (1.0, 8.0)  # the most extreme values within 1.5 IQR
    assert box["outliers"] == [-30.0, 40.0]
    same = charts.box_stats([2.0] * 5)
    assert same["lowerfence"] == same["upperfence"] == same["median"] == 2.0 and same["outliers"] == []


def test_outliers_are_bounded_and_keep_the_extremes() -> None:
    values = list(np.linspace(0, 1, 10_000)) + [float(x) for x in range(10, 1010)]  # 1,000 outliers
    box = charts.box_stats(values)
    assert len(box["outliers"]) == charts.MAX_OUTLIERS
    assert box["outliers"][0] == 10.0 and box["outliers"][-1] == 1009.0


def test_distribution_ships_summaries_not_every_value() -> None:
    rows = [CaseRow(case_id=str(i), question_id=f"q{i}", endpoint="e", strategy="long_context",
                    strategy_name="long_context", latency_s=float(i % 97)) for i in range(5000)]
    chart = charts.distribution(rows, charts.Labels(["long_context"], ["e"]), metric="latency_s")
    assert chart.n == 5000 and chart.figure is not None
    box = chart.figure["data"][0]
    assert box["type"] == "box" and box["median"] == [float(np.median([i % 97 for i in range(5000)]))]
    shipped = sum(len(t.get("x") or []) for t in chart.figure["data"])
    assert shipped <= charts.MAX_OUTLIERS
