from .intake import IngestResult, case_contest, case_ingest, case_ingest_batch
from .policies import Published, policy_publish
from .reason_codes import LoadResult, reason_codes_load

__all__ = [
    "IngestResult",
    "LoadResult",
    "Published",
    "case_contest",
    "case_ingest",
    "case_ingest_batch",
    "policy_publish",
    "reason_codes_load",
]
