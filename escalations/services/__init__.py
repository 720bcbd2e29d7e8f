from .appeals import (
    AppealRefused,
    appeal_decide,
    appeal_file,
    appeal_statement,
    appeal_statement_open,
)
from .deadlines import tasks_escalate_overdue
from .erasure import ErasureRefused, legal_hold_lift, legal_hold_place, subject_erase

__all__ = [
    "AppealRefused",
    "ErasureRefused",
    "appeal_decide",
    "appeal_file",
    "appeal_statement",
    "appeal_statement_open",
    "legal_hold_lift",
    "legal_hold_place",
    "subject_erase",
    "tasks_escalate_overdue",
]
