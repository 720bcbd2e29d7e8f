"""Reads for appeals, notices, subjects and the supervisor's board.

- ``appeals``: the policy's appeal rules, the window, independence, staff reads;
- ``notices``: the customer's statement of reasons;
- ``subjects``: a subject by reference, their legal holds;
- ``board``: the supervisor's board and the tasks about to miss their deadline.
"""

from escalations.selectors.appeals import (
    AppealRules,
    AppealWindow,
    appeal_conflicted,
    appeal_for_staff,
    appeal_queue,
    appeal_window,
    case_conflicted_users,
    case_is_urgent,
    queue_workable_by,
)
from escalations.selectors.board import DueSoon, SupervisorBoard, supervisor_board, tasks_due_soon
from escalations.selectors.notices import Notice, case_for_notice, notice_build, outcome_name
from escalations.selectors.subjects import subject_by_reference, subject_holds

__all__ = [
    "AppealRules",
    "AppealWindow",
    "DueSoon",
    "Notice",
    "SupervisorBoard",
    "appeal_conflicted",
    "appeal_for_staff",
    "appeal_queue",
    "appeal_window",
    "case_conflicted_users",
    "case_for_notice",
    "case_is_urgent",
    "notice_build",
    "outcome_name",
    "queue_workable_by",
    "subject_by_reference",
    "subject_holds",
    "supervisor_board",
    "tasks_due_soon",
]
