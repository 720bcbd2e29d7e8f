"""Texts written for the customer, in their language (issue 13 item 2).

Every text of a policy or a reason-code catalog that a customer reads (what
an outcome means, the reason's wording, the legal or contractual ground, what
the automated system relied on, why a person looked at the case, where to
go outside the organisation) is given either as plain text, in the policy's
``default_locale`` (English unless it says otherwise), or as a mapping
``{locale: text}``. The reader gets their language, then the plain language
of that locale (``es`` for ``es-MX``), then the default, then English: so
English shows only where their language is missing.
"""

import re
from typing import Any

LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*$")
MAX_CHARS = 5000
# C0 controls except tab and newline, DEL, C1 controls.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Customer texts are shown as text, never as markup.
MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?][^>]*>|&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")

# The texts of a rule, beside its name, when and queue.
RULE_TEXTS = ("customer_text", "ground", "explanation_customer")


def wording_problems(value: Any, where: str) -> list[str]:
    """What is wrong with a customer text (plain, or ``{locale: text}``)."""
    if isinstance(value, str):
        return _text_problems(value, where)
    if not isinstance(value, dict) or not value:
        return [f"{where}: give text, or a mapping of locales to text such as {{en: ..., es: ...}}"]
    problems = []
    for locale, text in value.items():
        if not isinstance(locale, str) or not LOCALE.match(locale):
            problems.append(f"{where}: {locale!r} is not a locale (e.g. en, es, es-MX)")
        elif not isinstance(text, str):
            problems.append(f"{where}.{locale}: must be text")
        else:
            problems += _text_problems(text, f"{where}.{locale}")
    return problems


def _text_problems(text: str, where: str) -> list[str]:
    if len(text) > MAX_CHARS:
        return [f"{where}: {len(text):,} characters; at most {MAX_CHARS:,}"]
    if CONTROL.search(text):
        return [f"{where}: contains a control character"]
    if MARKUP.search(text):
        return [f"{where}: must be plain text, without markup (tags or entities)"]
    return []


def policy_wording_problems(document: dict) -> list[str]:
    """The problems of a policy's customer texts (called by ``policy_validate``):
    ``default_locale``, the values of ``outcome_wording``, ``external_review``,
    and each rule's ``customer_text``, ``ground`` and ``explanation_customer``."""
    problems = []
    default_locale = document.get("default_locale", "en")
    if not isinstance(default_locale, str) or not LOCALE.match(default_locale):
        problems.append(
            f"default_locale: the language of the policy's plain texts, e.g. en or es; "
            f"got {default_locale!r}"
        )
    wording = document.get("outcome_wording")
    if isinstance(wording, dict):
        for outcome, text in wording.items():
            problems += wording_problems(text, f"outcome_wording.{outcome}")
    if "external_review" in document:
        problems += wording_problems(document["external_review"], "external_review")
    rules = document.get("rules")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        name = rule.get("name")
        where = f"rules[{index}] ({name})" if isinstance(name, str) and name else f"rules[{index}]"
        for key in RULE_TEXTS:
            if key in rule:
                problems += wording_problems(rule[key], f"{where}.{key}")
    return problems


def wording_for(value: Any, language: str, default_locale: str = "en") -> str:
    """``value`` (plain text, or ``{locale: text}``) in ``language``, falling
    back to its plain language, the default locale, then English; "" for none."""
    if not value:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return ""
    texts = {_key(locale): text for locale, text in value.items() if isinstance(text, str)}
    for locale in (language, language.split("-")[0], default_locale, "en"):
        if texts.get(_key(locale)):
            return texts[_key(locale)]
    return next((texts[locale] for locale in sorted(texts) if texts[locale]), "")


def wording_is_plain_in(value: Any, language: str, default_locale: str = "en") -> bool:
    """Whether ``value`` has a text of its own for ``language`` (or is plain
    text of a policy written in it), rather than falling back."""
    if isinstance(value, str):
        return _key(default_locale).split("-")[0] == _key(language).split("-")[0]
    if not isinstance(value, dict):
        return False
    keys = {_key(locale) for locale in value}
    return _key(language) in keys or _key(language).split("-")[0] in keys


def wording_split(value: Any, base_locale: str = "en") -> tuple[str, dict[str, str]]:
    """A customer text as a catalog keeps it: the text in ``base_locale``
    (or, failing that, the first given) and the other locales' texts."""
    if isinstance(value, str) or value is None:
        return value or "", {}
    texts = {_key(locale): text for locale, text in value.items()}
    base = _key(base_locale)
    if base not in texts:
        base = sorted(texts)[0]
    others = {locale: text for locale, text in texts.items() if locale != base}
    return texts[base], others


def _key(locale: str) -> str:
    return locale.replace("_", "-").lower()
