"""The statistics of the figures (workbench.metrics.stats): intervals and buckets."""

import math

import pytest

from workbench.metrics import (
    Rate,
    duration_bucket,
    hist_quantile,
    newcombe_interval,
    wilson_interval,
)


def test_wilson_interval_matches_the_hand_computation():
    # 3 of 10, z = 1.96: centre (0.3 + 1.92/10) / 1.384 = 0.3555, half-width
    # 1.96 / 1.384 * sqrt(0.021 + 0.0096) = 0.2477.
    low, high = wilson_interval(3, 10)
    assert (round(low, 4), round(high, 4)) == (0.1078, 0.6032)
    # No errors in 40 still has an upper bound (3.84 / 43.84), and the bounds stay in [0, 1].
    assert wilson_interval(0, 40) == (0.0, pytest.approx(0.0876, abs=1e-4))
    assert wilson_interval(5, 5)[1] == 1.0


def test_newcombe_interval_of_a_difference_is_built_from_the_two_wilson_intervals():
    a, b = Rate(4, 7), Rate(3, 7)
    (l1, u1), (l2, u2) = (0.2505, 0.8418), (0.1582, 0.7495)  # Wilson, by hand
    d = 4 / 7 - 3 / 7
    expected = (
        d - math.sqrt((4 / 7 - l1) ** 2 + (u2 - 3 / 7) ** 2),
        d + math.sqrt((u1 - 4 / 7) ** 2 + (3 / 7 - l2) ** 2),
    )
    low, high = newcombe_interval(a, b)
    assert low == pytest.approx(expected[0], abs=2e-4) == pytest.approx(-0.3111, abs=1e-4)
    assert high == pytest.approx(expected[1], abs=2e-4) == pytest.approx(0.5252, abs=1e-4)


def test_durations_fall_in_fixed_log_buckets_and_quantiles_come_within_9_percent():
    assert duration_bucket(0.2) == duration_bucket(1) == 0
    assert duration_bucket(7200) == 52  # 2^(51/4) = 6889 < 7200 <= 2^13 = 8192
    assert duration_bucket(8192) == 52 and duration_bucket(8193) == 53
    assert duration_bucket(10**12) == 108  # the last bucket takes everything longer
    values = [30, 45, 60, 90, 120, 600, 3600, 7200, 86400, 172800]
    hist: dict = {}
    for value in values:
        key = str(duration_bucket(value))
        hist[key] = hist.get(key, 0) + 1
    assert hist_quantile(hist, 0.5) == pytest.approx(120, rel=0.09)  # the 5th of 10
    assert hist_quantile(hist, 0.9) == pytest.approx(86400, rel=0.09)  # the 9th of 10
    assert hist_quantile({}, 0.5) is None
