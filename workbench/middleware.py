from django.conf import settings
from django.http import JsonResponse


class ApiBodyLimitMiddleware:
    """413 for API bodies over their limit, before anything reads them.

    One case may be 1 MiB; a batch of up to 1,000 has a larger limit.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            limit = (
                settings.API_MAX_BATCH_BODY_BYTES
                if request.path.rstrip("/").endswith("/cases/batch")
                else settings.API_MAX_BODY_BYTES
            )
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
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
        return self.get_response(request)
