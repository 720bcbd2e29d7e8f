from .contests import case_contest
from .feedback import (
    FeedbackInvalid,
    FeedbackRefused,
    Recorded,
    feedback_invite,
    feedback_invite_many,
    feedback_record,
)
from .intake import IngestResult, case_ingest, case_ingest_batch
from .policies import DryRun, Published, policy_check, policy_dry_run, policy_publish
from .reason_codes import LoadResult, reason_code_save, reason_codes_load

__all__ = [
    "DryRun",
    "FeedbackInvalid",
    "FeedbackRefused",
    "IngestResult",
    "LoadResult",
    "Published",
    "Recorded",
    "case_contest",
    "case_ingest",
    "case_ingest_batch",
    "feedback_invite",
    "feedback_invite_many",
    "feedback_record",
    "policy_check",
    "policy_dry_run",
    "policy_publish",
    "reason_code_save",
    "reason_codes_load",
]
