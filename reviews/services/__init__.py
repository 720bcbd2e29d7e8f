from .intake import IngestResult, case_contest, case_ingest, case_ingest_batch
from .policies import Published, policy_publish

__all__ = [
    "IngestResult",
    "Published",
    "case_contest",
    "case_ingest",
    "case_ingest_batch",
    "policy_publish",
]
