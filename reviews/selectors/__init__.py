"""Reads for intake and review.

- ``cases``: the active policy, a system's case, its trail, the feed of
  changes, decisions, contests and what the customer wrote;
- ``queues``: the reviewer's queues, the tasks held, who may open a case;
- ``choices``: the Outcome and Reason choices of the decision form;
- ``blind``: what a blind reviewer may see before committing;
- ``feedback``: the customer's answers to the notice's questions;
- ``explained``: the route explained and the case's history, for people.

(The supervisor's board is ``escalations.selectors.board``.)
"""

from reviews.selectors.blind import AI_VIEW, BLIND_VIEW, FULL_VIEW
from reviews.selectors.cases import (
    Contest,
    case_appeal_state,
    case_contests,
    case_decisions,
    case_feed,
    case_get_for_system,
    case_input_opened,
    case_trail,
    policy_active,
    reason_codes_for,
)
from reviews.selectors.choices import (
    OTHER_REASON,
    ReasonChoices,
    case_outcome_choices,
    case_reason_choices,
)
from reviews.selectors.explained import RouteView, case_timeline, route_explained
from reviews.selectors.feedback import (
    FeedbackState,
    feedback_change_until,
    feedback_for_notice,
    feedback_stage,
)
from reviews.selectors.queues import (
    ACTIVE_TASK,
    CaseForReviewer,
    case_for_compliance,
    case_for_reviewer,
    queues_overview,
    tasks_held,
)

__all__ = [
    "ACTIVE_TASK",
    "AI_VIEW",
    "BLIND_VIEW",
    "FULL_VIEW",
    "OTHER_REASON",
    "CaseForReviewer",
    "Contest",
    "FeedbackState",
    "ReasonChoices",
    "RouteView",
    "case_appeal_state",
    "case_contests",
    "case_decisions",
    "case_feed",
    "case_for_compliance",
    "case_for_reviewer",
    "case_get_for_system",
    "case_input_opened",
    "case_outcome_choices",
    "case_reason_choices",
    "case_timeline",
    "case_trail",
    "feedback_change_until",
    "feedback_for_notice",
    "feedback_stage",
    "policy_active",
    "queues_overview",
    "reason_codes_for",
    "route_explained",
    "tasks_held",
]
