"""MCR metrics against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from crs.evals.metrics import HDCG, AverageTurns, EpisodeResult, SuccessCurve, SuccessRate, default_metrics, hdcg


def ep(turn: int | None, rank: int | None = None) -> EpisodeResult:
    return EpisodeResult("u", "i", turn, rank if turn is not None else None)


def test_hdcg_matches_the_readme_formula_by_hand() -> None:
    # success at the first agent turn (0-based t = 0), rank 1: 1/log2(3) + (1 - 1/log2(3)) / 1 = 1
    assert hdcg(1, 1) == pytest.approx(1.0)
    # t = 2 (third agent turn), rank 4: 1/log2(5) + (1/log2(4) - 1/log2(5)) / log2(5)
    expected = 1 / math.log2(5) + (0.5 - 1 / math.log2(5)) / math.log2(5)
    assert hdcg(3, 4) == pytest.approx(expected)
    assert hdcg(3, 4) == pytest.approx(0.4605, abs=1e-4)


def test_success_rate_average_turns_and_hdcg_over_episodes() -> None:
    episodes = [ep(3, 1), ep(7, 2), ep(None), ep(15, 10)]
    sr5, sr10, sr15, at, h = SuccessRate(5), SuccessRate(10), SuccessRate(15), AverageTurns(15), HDCG()
    for e in episodes:
        for m in (sr5, sr10, sr15, at, h):
            m.update(e)
    assert sr5.result() == {"SR@5": 0.25}
    assert sr10.result() == {"SR@10": 0.5}
    assert sr15.result() == {"SR@15": 0.75}
    assert at.result() == {"AT": (3 + 7 + 15 + 15) / 4}  # a failure counts the full budget
    assert h.result()["hDCG"] == pytest.approx((hdcg(3, 1) + hdcg(7, 2) + 0 + hdcg(15, 10)) / 4)


def test_success_curve_is_cumulative_and_composes() -> None:
    curve = SuccessCurve(4)
    for e in [ep(1, 1), ep(3, 2), ep(None), ep(3, 1)]:
        curve.update(e)
    assert curve.result() == {"success_curve": [0.25, 0.25, 0.75, 0.75]}
    metrics = default_metrics(4)
    for e in [ep(2, 1), ep(None)]:
        metrics.update(e)
    out = metrics.result()
    assert out["SR@1"] == 0.0 and out["SR@2"] == 0.5 and out["SR@4"] == 0.5
    assert out["SR@15"] == 0.5  # past the budget nothing more can succeed
    assert out["AT"] == 3.0 and out["success_curve"] == [0.0, 0.5, 0.5, 0.5]
