"""The statistics of the compliance figures: log-scale duration histograms
that add up across days, and proportions with their 95% intervals."""

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the 97.5% point of the standard normal


# --- Histogram buckets -------------------------------------------------------------------

BUCKETS_PER_DOUBLING = 4
MAX_BUCKET = 27 * BUCKETS_PER_DOUBLING  # 2^27 s, about 4 years


def duration_bucket(seconds: float) -> int:
    """The bucket of a duration: 0 holds up to 1 s, bucket ``i`` the durations
    in (2^((i-1)/4), 2^(i/4)] seconds. Fixed for ever: changing it means
    rebuilding the rollups (``metrics_rollup_reset``)."""
    if seconds <= 1:
        return 0
    index = math.ceil(BUCKETS_PER_DOUBLING * math.log2(seconds) - 1e-9)
    return min(max(index, 1), MAX_BUCKET)


def bucket_bounds(index: int) -> tuple[float, float]:
    if index == 0:
        return 0.0, 1.0
    return 2 ** ((index - 1) / BUCKETS_PER_DOUBLING), 2 ** (index / BUCKETS_PER_DOUBLING)


def hist_quantile(hist: dict, q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of a bucket histogram: the geometric
    middle of the bucket that holds the ceil(q * n)-th smallest duration."""
    counts = sorted((int(index), count) for index, count in hist.items() if count)
    total = sum(count for _, count in counts)
    if not total:
        return None
    rank = max(1, math.ceil(q * total - 1e-9))
    seen = 0
    for index, count in counts:
        seen += count
        if seen >= rank:
            low, high = bucket_bounds(index)
            return high if index == 0 else math.sqrt(low * high)
    raise AssertionError("unreachable")


def hist_add(into: dict, other: dict) -> dict:
    get = into.get
    for index, count in other.items():
        into[index] = get(index, 0) + count
    return into


def counts_add(into: dict, other: dict) -> dict:
    """Add the counts of ``other`` into ``into``, nested maps included."""
    for key, value in other.items():
        if isinstance(value, dict):
            counts_add(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value
    return into


# --- Proportions and their intervals -----------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """``x`` of ``n``, with its 95% Wilson score interval."""

    x: int
    n: int

    @property
    def value(self) -> float | None:
        return self.x / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.x, self.n) if self.n else None

    @property
    def low(self) -> float | None:
        return self.interval[0] if self.n else None

    @property
    def high(self) -> float | None:
        return self.interval[1] if self.n else None


def wilson_interval(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``x`` successes in ``n`` trials: unlike
    the textbook p ± z·se, it stays inside [0, 1] and holds up for small
    ``n`` and for rates near 0 or 1 (an error rate of 0 of 40 still gets an
    upper bound)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = x / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(a: Rate, b: Rate) -> tuple[float, float]:
    """95% interval of ``a.value - b.value`` by Newcombe's hybrid score method
    (1998, method 10), built from the two Wilson intervals: it keeps Wilson's
    good coverage for small groups and rates near 0 or 1, where the Wald
    interval of a difference is far too narrow."""
    p1, p2 = a.value, b.value
    l1, u1 = a.interval
    l2, u2 = b.interval
    d = p1 - p2
    return (
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def median(values: list[float]) -> float | None:
    """The middle value (the mean of the two middle ones), or None."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) by the nearest rank: the
    ceil(q * n)-th smallest value, as ``hist_quantile`` reads its buckets
    (so p90 of 10 values is the 9th). None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[rank - 1]


# --- Means and their intervals -----------------------------------------------------------


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (Lentz's
    method, as in Numerical Recipes' ``betacf``)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)), None):
            if numerator is None:
                numerator = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < eps:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1 - front * _beta_continued_fraction(b, a, 1 - x) / b


def student_t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t >= 0 else tail


def student_t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (0.5 <= p < 1) of Student's t, by bisection on the
    CDF (to 1e-12): t(0.975, 1) = 12.7062, t(0.975, 9) = 2.2622."""
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return (low + high) / 2


@dataclass(frozen=True)
class Mean:
    """The mean of ``values`` with its 95% Student t-interval
    (mean ± t(0.975, n-1) · s / √n, s the sample standard deviation), kept
    inside ``bounds`` (a 1–5 score cannot average 5.3). With one value there
    is a mean but no interval. For 1–5 ratings the t-interval is the usual
    choice: the mean of bounded scores is close to normal from a few dozen
    answers, and for fewer the interval is wide, as it should be."""

    values: tuple[float, ...]
    bounds: tuple[float, float] = (-math.inf, math.inf)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def value(self) -> float | None:
        return sum(self.values) / self.n if self.n else None

    @property
    def sd(self) -> float | None:
        if self.n < 2:
            return None
        mean = self.value
        return math.sqrt(sum((v - mean) ** 2 for v in self.values) / (self.n - 1))

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.n < 2:
            return None
        half = student_t_quantile(0.975, self.n - 1) * self.sd / math.sqrt(self.n)
        low, high = self.bounds
        return max(low, self.value - half), min(high, self.value + half)

    @property
    def low(self) -> float | None:
        return self.interval[0] if self.interval else None

    @property
    def high(self) -> float | None:
        return self.interval[1] if self.interval else None
