"""Errors with a stable code.

Services raise these; views, the API and commands map the code to a response.
Tests assert on the code, never on the wording.
"""


class WorkbenchError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, code: str | None = None, *, fields: list | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or []


class NotFound(WorkbenchError):
    code = "not_found"
    status = 404


class Conflict(WorkbenchError):
    code = "conflict"
    status = 409


class Invalid(WorkbenchError):
    """Input that cannot be accepted; ``fields`` names each bad field path."""

    code = "invalid"
    status = 422


class PayloadTooLarge(WorkbenchError):
    code = "too_large"
    status = 413


class Unavailable(WorkbenchError):
    code = "unavailable"
    status = 503


class RateLimited(WorkbenchError):
    """Too many requests for one key in the current window; try again later."""

    code = "rate_limited"
    status = 429
    retry_after = 60  # seconds: the longest window a limit here uses
