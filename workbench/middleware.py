from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template.loader import render_to_string


def _api_refusal(status: int, code: str, message: str) -> JsonResponse:
    """The API's error body (workbench.api), for answers given before it runs."""
    return JsonResponse({"error": {"code": code, "message": message, "fields": []}}, status=status)


class BodyLimitMiddleware:
    """413 for request bodies over their limit, before anything reads them
    (CSRF checking reads a form body, and Django would spool a huge upload
    to disk first).

    API: one case may be 1 MiB; a batch of up to 1,000 has a larger limit.
    An appeal on the notice page may carry evidence files; every other form
    is small.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        api = request.path.startswith("/api/")
        if api:
            limit = (
                settings.API_MAX_BATCH_BODY_BYTES
                if request.path.rstrip("/").endswith("/cases/batch")
                else settings.API_MAX_BODY_BYTES
            )
        elif request.path.startswith("/notice/"):
            limit = settings.APPEAL_MAX_BODY_BYTES
        else:
            limit = settings.WEB_MAX_BODY_BYTES
        if length <= limit:
            return self.get_response(request)
        if api:
            return _api_refusal(
                413, "too_large", f"the body has {length} bytes; the limit here is {limit}"
            )
        page = render_to_string(
            "413.html", {"limit_mb": limit // (1024 * 1024), "back": request.path}, request
        )
        return HttpResponse(page, status=413)


class NulCharacterMiddleware:
    """400 for a NUL character in the path, the query string or a cookie.

    None of ours has one, and PostgreSQL refuses NUL in any text it is
    given: a case looked up by such a reference, or a session by such a key
    (a cookie can spell it ``"\\000"``), was a server error. Form fields and
    JSON bodies refuse NUL on their own (Django's ``CharField``, the API's
    parser).
    """

    MESSAGE = "the address or a cookie holds a NUL character (%00), which no page here takes"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if (
            "\x00" in request.path_info
            or "%00" in query
            or "\x00" in query
            or any("\x00" in value for value in request.COOKIES.values())
        ):
            if request.path.startswith("/api/"):
                return _api_refusal(400, "bad_request", self.MESSAGE)
            return HttpResponseBadRequest(self.MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
