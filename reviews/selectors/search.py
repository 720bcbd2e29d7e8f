"""The staff search (issue 18, item 7): a case by its reference, its external
id or its subject's reference, among the cases the searcher may open.

Each match is exact (a reference whatever its case), so a search finds a
case someone already knows of and never lists what merely resembles it.
Which cases a person may open is ``reviews.access`` (``cases_openable``),
as on the case page: a case they may not open is left out exactly as a case
that does not exist, so a search never confirms that one does.
"""

import re
from dataclasses import dataclass

from django.db.models import Q

from reviews.access import cases_openable
from reviews.models import Case
from workbench.errors import WorkbenchError
from workbench.models import Role, User

SEARCH_MAX_LENGTH = 100
SEARCH_MAX_RESULTS = 50
# The matching cases read to find the newest SEARCH_MAX_RESULTS the user may
# open: a subject reference may match many cases of systems they do not see.
SEARCH_SCAN = 500
# What a reference, an external id or a subject reference is made of.
SEARCH_CHARACTERS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#@+=-]*")


class SearchRefused(WorkbenchError):
    """A search term that is not one (too long, or odd characters): no query runs."""


@dataclass(frozen=True)
class SearchHit:
    case: Case
    how: str  # how the user opens it: "review" (the case page), "compliance", "admin"


def search_term(*, q: str) -> str:
    """``q`` trimmed, or ``SearchRefused`` (``search_too_long``,
    ``search_characters``). An empty term is no search (``""``)."""
    term = q.strip()
    if len(term) > SEARCH_MAX_LENGTH:
        raise SearchRefused(
            f"A search is at most {SEARCH_MAX_LENGTH} characters.", "search_too_long"
        )
    if term and not SEARCH_CHARACTERS.fullmatch(term):
        raise SearchRefused(
            "Search for a case reference, an external id or a subject reference: "
            "letters, digits and - _ . : / # @ + = only.",
            "search_characters",
        )
    return term


def cases_search(*, user: User, roles: set[str], q: str) -> list[SearchHit]:
    """The cases matching ``q`` (``search_term``) that ``user`` may open, newest
    first, at most ``SEARCH_MAX_RESULTS``: reviewers and supervisors by
    ``cases_openable`` (they open it on the case page), compliance and admin
    every case (compliance through the purpose page). A fixed number of
    queries whatever the number of results."""
    term = search_term(q=q)
    if not term:
        return []
    matching = (
        Case.objects.filter(
            Q(reference=term.upper()) | Q(external_id=term) | Q(subject__reference=term)
        )
        .select_related("system")
        .order_by("-created_at", "-pk")
    )
    everything = {Role.COMPLIANCE, Role.ADMIN} & roles
    cases = list(matching[: SEARCH_MAX_RESULTS if everything else SEARCH_SCAN])
    openable = cases_openable(cases=cases, user=user, roles=roles)
    hits = []
    for case in cases:
        if case.pk in openable:
            hits.append(SearchHit(case=case, how="review"))
        elif Role.COMPLIANCE in roles:
            hits.append(SearchHit(case=case, how="compliance"))
        elif Role.ADMIN in roles:
            hits.append(SearchHit(case=case, how="admin"))
    return hits[:SEARCH_MAX_RESULTS]
