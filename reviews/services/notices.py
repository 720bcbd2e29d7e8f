"""The customer's notice link: a secret token of which only the hash is stored."""

import base64
import hashlib
import hmac

from django.conf import settings


def notice_token(reference: str) -> str:
    """Derived from the server secret, so a resubmission gets the same link back
    without the token ever being stored."""
    mac = hmac.new(settings.SECRET_KEY.encode(), f"notice:{reference}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def notice_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def notice_url(reference: str) -> str:
    return f"{settings.WORKBENCH_BASE_URL}/notice/{notice_token(reference)}/"
