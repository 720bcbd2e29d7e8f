"""A chatbot's input in the OpenAI chat-completions format (``input.messages``),
read at the edge into the conversation every other part of Workbench knows
(``input.conversation``, DESIGN §5), so that routing, sealing, erasure and the
pages have one shape to handle.

- Roles: ``user`` is the customer; ``assistant`` stays the assistant;
  ``system``, ``developer`` and ``tool`` keep their own roles: the reviewer
  sees them, nothing treats them as the customer.
- Content is a string, or a list of content parts whose ``text`` (and an
  assistant's ``refusal``) parts are joined with newlines; a non-text part is
  kept as a placeholder (``[image]``, ``[audio]``, ``[file]``) and never
  fetched. An assistant message may have no content when it has
  ``tool_calls`` (or a ``refusal``).
- Kept besides role and text: an assistant's ``tool_calls`` and ``name``, a
  tool's ``tool_call_id`` and ``name``, a system or developer ``name``. A
  user's ``name`` is not kept (it may be the customer's own name), nor is any
  other key of a message.
"""

ROLES = {
    "system": "system",
    "developer": "developer",
    "user": "customer",
    "assistant": "assistant",
    "tool": "tool",
}
PLACEHOLDERS = {"image_url": "[image]", "input_audio": "[audio]", "file": "[file]"}
PART_TYPES = {
    "customer": {"text", *PLACEHOLDERS},
    "assistant": {"text", "refusal"},
}  # any other role: text parts only
MAX_TEXT = 20_000  # as a turn of input.conversation
KEPT = {"assistant": ("name", "tool_calls"), "tool": ("tool_call_id", "name")}

Problem = tuple[tuple, str]  # (path below input.messages, message)


def messages_read(messages) -> tuple[list[dict], list[Problem]]:
    """The conversation turns of ``messages``, and every problem found, each
    with its path below ``input.messages``; no turns when there is one."""
    if not isinstance(messages, list) or not messages:
        return [], [((), "a non-empty list of chat-completions messages")]
    turns, problems = [], []
    for index, message in enumerate(messages):
        turn, found = _message_read(message)
        turns.append(turn)
        problems += [((index, *path), text) for path, text in found]
    return ([] if problems else turns), problems


def _message_read(message) -> tuple[dict, list[Problem]]:
    if not isinstance(message, dict):
        return {}, [((), 'an object such as {"role": "user", "content": "..."}')]
    given = message.get("role")
    if not isinstance(given, str) or given not in ROLES:
        shown = "missing" if "role" not in message else f"unknown role {given!r}"
        return {}, [(("role",), f"{shown}; one of {', '.join(ROLES)}")]
    role = ROLES[given]
    problems: list[Problem] = []
    for key in ("name", "tool_call_id"):
        if key in message and not isinstance(message[key], str):
            problems.append(((key,), "a string"))
    tool_calls = message.get("tool_calls")
    calls = role == "assistant" and isinstance(tool_calls, list)
    calls = calls and all(isinstance(call, dict) for call in tool_calls)
    if "tool_calls" in message and not calls:
        problems.append((("tool_calls",), "a list of objects, on an assistant message only"))
    refusal = message.get("refusal")
    if refusal is not None and (role != "assistant" or not isinstance(refusal, str)):
        problems.append((("refusal",), "a string, on an assistant message only"))
    content = message.get("content")
    text = None
    if content is None:
        if role != "assistant" or not ((calls and tool_calls) or isinstance(refusal, str)):
            problems.append((("content",), "required (null only for an assistant's tool_calls)"))
        text = refusal if isinstance(refusal, str) else ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list) and content:
        text, found = _parts_read(content, PART_TYPES.get(role, {"text"}))
        problems += found
    else:
        problems.append((("content",), "a string or a non-empty list of content parts"))
    if isinstance(text, str) and len(text) > MAX_TEXT:
        problems.append((("content",), f"at most {MAX_TEXT:,} characters of text"))
    turn = {"role": role, "text": text or ""}
    for key in KEPT.get(role, ("name",) if role != "customer" else ()):
        if key in message:
            turn[key] = message[key]
    return turn, problems


def _parts_read(parts: list, allowed: set[str]) -> tuple[str, list[Problem]]:
    texts, problems = [], []
    for index, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or kind not in allowed:
            problems.append(
                (("content", index, "type"), f"a content part of type {', '.join(sorted(allowed))}")
            )
        elif kind in PLACEHOLDERS:
            texts.append(PLACEHOLDERS[kind])
        elif not isinstance(part.get(kind), str):
            problems.append((("content", index, kind), "a string"))
        else:
            texts.append(part[kind])
    return "\n".join(texts), problems
