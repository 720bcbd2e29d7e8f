"""The thresholds of the justice audit scorecard: the policy's optional
``audit:`` mapping (DESIGN §4: every key optional, with the default a
compliance officer would expect), its check, and the status rule.

The policy validator (``reviews.routing.validation``) calls
``audit_thresholds_resolve`` and stores the resolved thresholds in the
normalized policy; ``policy.published`` records them in the trail, where the
scorecard reads them (``workbench.metrics.justice``), so that a scorecard can
be recomputed from an exported trail alone.

The status of a line (``line_status``), for a threshold that is a limit the
figure must stay at or under (``at_most``) or at or over (``at_least``):

- with a 95% interval: **holds** when the whole interval is on the right side
  of the limit, **fails** when the whole interval is on the wrong side,
  **watch** when the interval crosses the limit (the data cannot tell yet);
- without an interval (counts, medians, the index): **holds** or **fails**
  by the value itself;
- **no data** when there is nothing to measure (never a division by zero).
"""

from dataclasses import dataclass
from typing import Any

HOLDS, WATCH, FAILS, NO_DATA = "holds", "watch", "fails", "no data"
AT_MOST, AT_LEAST = "at_most", "at_least"


@dataclass(frozen=True)
class Threshold:
    default: float
    direction: str  # AT_MOST or AT_LEAST
    low: float  # the values a policy may set: low..high
    high: float
    doc: str


# One entry per scorecard line that has a policy threshold. The independence
# line has none: its limit is 0, fixed (DESIGN §1: never someone who decided
# the case before, nor anyone in that person's reporting line).
AUDIT_THRESHOLDS: dict[str, Threshold] = {
    "adverse_gap": Threshold(
        0.10,
        AT_MOST,
        0,
        1,
        "largest difference in adverse-outcome rate between two values of a fairness "
        "segment (0.10: ten percentage points)",
    ),
    "overturn_rate": Threshold(
        0.20, AT_MOST, 0, 1, "share of decided appeals that changed the decision"
    ),
    "qa_error_rate": Threshold(
        0.05, AT_MOST, 0, 1, "share of QA re-checks in which the person overrode the AI"
    ),
    "notice_opened": Threshold(
        0.50, AT_LEAST, 0, 1, "share of adverse decisions whose notice the customer opened"
    ),
    "appeal_rate": Threshold(0.15, AT_MOST, 0, 1, "appeals filed per final decision"),
    "appeal_median_days": Threshold(
        14, AT_MOST, 0, 3650, "median days from filing an appeal to its decision"
    ),
    "appeal_p90_days": Threshold(
        30, AT_MOST, 0, 3650, "90th percentile of days from filing an appeal to its decision"
    ),
    "deadline_breaches": Threshold(
        0, AT_MOST, 0, 100_000, "tasks not decided by their due time (case.overdue)"
    ),
    "human_share": Threshold(
        0.10,
        AT_LEAST,
        0,
        1,
        "share of final decisions a person made (below it, human oversight is nominal)",
    ),
    "connection_index": Threshold(60, AT_LEAST, 0, 100, "the connection index, 0 to 100"),
    "time_to_human_minutes": Threshold(
        60,
        AT_MOST,
        0,
        525_600,
        "90th percentile of minutes until a distressed customer's case is in a person's "
        "hands; the connection index counts the share reached within it",
    ),
    "rating": Threshold(
        3.5, AT_LEAST, 1, 5, "mean customer rating (1 to 5), after human and after AI decisions"
    ),
}


def audit_defaults() -> dict[str, float]:
    return {name: threshold.default for name, threshold in AUDIT_THRESHOLDS.items()}


def audit_thresholds_resolve(value: Any, problems: list[str]) -> dict[str, float]:
    """The policy's ``audit:`` mapping with every threshold filled in; each
    problem (not a mapping, an unknown key, a value out of range) is added
    to ``problems`` naming the key."""
    resolved = audit_defaults()
    if value is None:
        return resolved
    if not isinstance(value, dict):
        problems.append("audit: must map scorecard lines to thresholds")
        return resolved
    for unknown in sorted(set(value) - set(AUDIT_THRESHOLDS), key=str):
        problems.append(
            f"audit: unknown threshold {unknown!r}; use {', '.join(sorted(AUDIT_THRESHOLDS))}"
        )
    for name, threshold in AUDIT_THRESHOLDS.items():
        if name not in value:
            continue
        given = value[name]
        number = isinstance(given, int | float) and not isinstance(given, bool)
        if not number or not threshold.low <= given <= threshold.high:
            problems.append(
                f"audit.{name}: a number from {threshold.low:g} to {threshold.high:g} "
                f"({threshold.doc}); got {given!r}"
            )
            continue
        resolved[name] = given
    return resolved


def line_status(
    value: float | None,
    limit: float,
    direction: str,
    interval: tuple[float, float] | None = None,
) -> str:
    """holds / watch / fails / no data, by the rule in the module docstring."""
    if value is None:
        return NO_DATA

    def within(x: float) -> bool:
        return x <= limit if direction == AT_MOST else x >= limit

    if interval is None:
        return HOLDS if within(value) else FAILS
    low, high = interval
    if within(low) and within(high):
        return HOLDS
    if not within(low) and not within(high):
        return FAILS
    return WATCH
