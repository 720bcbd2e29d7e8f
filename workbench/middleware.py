from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string


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
            return JsonResponse(
                {
                    "error": {
                        "code": "too_large",
                        "message": f"the body has {length} bytes; the limit here is {limit}",
                        "fields": [],
                    }
                },
                status=413,
            )
        page = render_to_string(
            "413.html", {"limit_mb": limit // (1024 * 1024), "back": request.path}, request
        )
        return HttpResponse(page, status=413)
