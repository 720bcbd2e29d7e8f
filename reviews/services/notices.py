"""The customer's notice link: a secret token of which only the hash is stored.

The token is an HMAC of the case reference with ``NOTICE_LINK_KEY``, so a
resubmission gets the same link back without the token ever being stored.
After the key is changed (the old one kept in ``NOTICE_LINK_KEY_FALLBACKS``)
links already sent keep working, since the case keeps the hash it was given,
and a case's link is derived again with whichever key made that hash.
"""

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import pgettext

from reviews.models import Case
from workbench.services.outbox import outbox_enqueue
from workbench.services.trail import Actor, trail_append

logger = logging.getLogger(__name__)


def notice_token(reference: str, key: str | None = None) -> str:
    """The link's token for a new case (with the current key), or with ``key``."""
    key = key or settings.NOTICE_LINK_KEY
    mac = hmac.new(key.encode(), f"notice:{reference}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def notice_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def notice_url(case) -> str:
    """The case's link, with the key its stored hash was made with."""
    keys = (settings.NOTICE_LINK_KEY, *settings.NOTICE_LINK_KEY_FALLBACKS)
    for key in keys:
        token = notice_token(case.reference, key)
        if hmac.compare_digest(notice_token_hash(token), case.notice_token_hash):
            break
    else:
        # Its key is lost: the link handed out will not open the notice.
        logger.error(
            "notice link of case %s: made with a key that is neither NOTICE_LINK_KEY"
            " nor in NOTICE_LINK_KEY_FALLBACKS",
            case.reference,
        )
        token = notice_token(case.reference)
    return f"{settings.WORKBENCH_BASE_URL}/notice/{token}/"


def customer_language(locale: str | None) -> str:
    """The language a customer reads: their locale where there is a
    translation (``es-MX`` → ``es``), else the default (``settings.LANGUAGE_CODE``),
    whatever the locale says (one that exists nowhere included)."""
    try:
        return translation.get_supported_language_variant(locale or settings.LANGUAGE_CODE)
    except LookupError:
        return settings.LANGUAGE_CODE


def customer_date(moment) -> str:
    """A date as the customer's notice writes it, in the active language."""
    return date_format(timezone.localtime(moment), pgettext("date format", "j F Y"))


def customer_email(*, case, topic: str, compose: Callable[[], tuple[str, str]]):
    """Write the customer an email about ``case``, through the outbox, in
    the caller's transaction, when an address is known (none once erased).
    ``compose()`` runs in the customer's language and returns the subject
    line and the body. The message is tagged with the subject, so that
    erasure finds it (``outbox_erase``)."""
    from reviews.services.subjects import contact_open  # the services package imports this

    subject = case.subject
    email = (contact_open(subject) or {}).get("email")
    if not email:
        return None
    with translation.override(customer_language(subject.locale)):
        title, body = compose()
    return outbox_enqueue(
        channel="email",
        topic=topic,
        destination=email,
        payload={"subject": str(title), "body": str(body), "about": f"subject:{subject.pk}"},
    )


def notice_open(*, case) -> bool:
    """The customer opened their notice link: the first time, record it on
    the case and in the trail (``notice.opened``), once, however many times
    or however concurrently it is opened. A conditional UPDATE of the empty
    timestamp decides: only its winner writes the event (the row lock is
    taken before the chain head's). True for the winner."""
    if case.notice_opened_at is not None:
        return False  # opened before: no write at all
    now = timezone.now()
    with transaction.atomic():
        won = Case.objects.filter(pk=case.pk, notice_opened_at__isnull=True).update(
            notice_opened_at=now
        )
        if not won:
            return False
        case.notice_opened_at = now
        outcome = case.final_outcome or case.outcome
        trail_append(
            action="notice.opened",
            actor=Actor.customer(case.subject.reference),
            case=case.reference,
            system=case.system.slug,
            data={"adverse": case.policy.is_adverse(outcome)},
        )
    return True
