"""The client's address, the one rule for everyone who needs it (login
lockout, rate limits, the metrics allowlist)."""

from django.conf import settings


def client_ip(request) -> str:
    """``REMOTE_ADDR``, or behind ``TRUSTED_PROXY_COUNT`` proxies the address
    the outermost of them saw: each proxy appends the address it received
    from to ``X-Forwarded-For``, so the client is the entry that many places
    from the right. Entries left of it are whatever the client sent, and are
    never trusted."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")
