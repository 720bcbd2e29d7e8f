"""Blind review: what a blind reviewer may see before committing (STYLE 14)."""


# --- Blind review: what a blind reviewer may see (STYLE 14) ---------------------------------
# Before a reviewer of a blind queue commits to their own outcome, the case
# page, its htmx fragment, its history and its route card are built from the
# lists below and from nothing else: a field, a condition or an event data key
# that is not listed stays hidden, however new it is.

# The parts of the page, named as the trail records them: ``visible`` in
# case.decided, case.reviewed and case.escalated lists what was on screen
# when the person chose the outcome.
BLIND_VIEW = ("case", "input", "rules_on_input", "queue", "lease")
AI_VIEW = (
    "outcome",
    "confidence",
    "reasons",
    "summary",
    "answer",
    "explanation",
    "adverse",
    "rules_on_output",
)
FULL_VIEW = BLIND_VIEW + AI_VIEW

# Route conditions shown to a blind reviewer, with their result: tests of what
# the AI saw (the customer's words, the case's input, metadata and model),
# never of what it said. Any other leaf, and a rule that holds one, is withheld.
BLIND_SHOWN_LEAVES = {"sentiment_below", "text_matches"}
BLIND_SHOWN_FIELD_ROOTS = {"input", "metadata", "model", "kind"}
# For claims, the lines' reason codes are the AI's adjustments, not its input.
BLIND_HIDDEN_FIELD_PARTS = {"reason_codes"}

# The trail's data a blind reviewer may read, per action. An action not
# listed shows who did it and when, without its data.
BLIND_TRAIL = {
    "case.received": ("external_id", "kind", "subject", "model"),
    "case.routed": ("status", "queue", "policy_version"),
    "case.claimed": ("task", "queue", "fencing_token", "lease_expires_at"),
    "case.released": ("task", "reason", "assignee"),
    "case.reassigned": ("task", "from", "to"),
    "case.contested": ("status", "queue"),
    "case.overdue": ("task", "from", "to", "due_at", "reason"),
}
# case.routed also names the rule when the route card may (``RouteView.disclosed``).
BLIND_TRAIL_ROUTE = ("reason", "rule")
BLIND_NOTE = "Parts that would show the AI's recommendation are hidden in blind review."
