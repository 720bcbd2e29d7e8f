"""Reading chat-completions messages into conversation turns
(reviews/chat_messages.py): roles, content parts, the keys kept, the problems
found with their paths."""

from reviews.chat_messages import messages_read


def test_roles_map_to_the_conversation_and_only_user_is_the_customer():
    turns, problems = messages_read(
        [
            {"role": "system", "content": "s", "name": "policy"},
            {"role": "developer", "content": [{"type": "text", "text": "d"}]},
            {"role": "user", "content": "u", "name": "Ana"},
            {"role": "assistant", "content": "a", "name": "bot", "audio": {"id": "x"}},
            {"role": "tool", "content": "t", "tool_call_id": "c1", "extra": 1},
        ]
    )
    assert problems == []
    assert turns == [
        {"role": "system", "text": "s", "name": "policy"},
        {"role": "developer", "text": "d"},
        {"role": "customer", "text": "u"},  # a user's name may be the customer's: not kept
        {"role": "assistant", "text": "a", "name": "bot"},
        {"role": "tool", "text": "t", "tool_call_id": "c1"},
    ]


def test_content_parts_are_joined_and_non_text_parts_are_placeholders():
    turns, problems = messages_read(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "one"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                    {"type": "file", "file": {"file_id": "file-1"}},
                    {"type": "text", "text": "two"},
                ],
            },
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        ]
    )
    assert problems == []
    assert turns[0] == {"role": "customer", "text": "one\n[image]\n[audio]\n[file]\ntwo"}
    assert turns[1] == {"role": "assistant", "text": "no"}


def test_an_assistant_may_have_no_content_with_tool_calls_or_a_refusal():
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    turns, problems = messages_read(
        [
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "assistant", "refusal": "I cannot"},
        ]
    )
    assert problems == []
    assert turns == [
        {"role": "assistant", "text": "", "tool_calls": calls},
        {"role": "assistant", "text": "I cannot"},
    ]


def test_every_problem_is_found_with_its_path_and_no_turns_are_given():
    turns, problems = messages_read(
        [
            {"role": "user", "content": "fine"},
            {"role": "customer", "text": "the conversation's shape"},
            {"role": "user", "content": [{"type": "refusal", "refusal": "x"}]},
            {"role": "tool", "content": "t", "tool_call_id": 3},
            {"role": "user", "content": "x", "refusal": "no"},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": ["user"], "content": "x"},  # any JSON: never an unhashable surprise
            {"role": "user", "content": [{"type": {"text": 1}}]},
        ]
    )
    assert turns == []
    assert [path for path, _ in problems] == [
        (1, "role"),
        (2, "content", 0, "type"),
        (3, "tool_call_id"),
        (4, "refusal"),
        (5, "content"),
        (6, "role"),
        (7, "content", 0, "type"),
    ]


def test_not_a_list_or_an_empty_one_is_one_problem_at_the_root():
    for messages in (None, [], {"role": "user"}, "hi"):
        assert messages_read(messages) == (
            [],
            [((), "a non-empty list of chat-completions messages")],
        )
