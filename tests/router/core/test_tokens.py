import pytest

from router.core.tokens import PER_MESSAGE, REPLY_PRIMING, count_prompt, count_text


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("Hello, world!", 4),
        ("héllo", 2),  # é is two bytes: six bytes in all
        ("日本語", 3),  # nine bytes
    ],
)
def test_a_quarter_of_the_utf8_bytes_rounded_up(text: str, tokens: int) -> None:
    assert count_text(text) == tokens


def test_a_prompt_adds_framing_per_message_and_reply_priming() -> None:
    messages = [["You are terse."], ["Hello, world!", "abcd"]]
    expected = REPLY_PRIMING + 2 * PER_MESSAGE + count_text("You are terse.") + 4 + 1
    assert count_prompt(messages) == expected
    assert count_prompt([]) == REPLY_PRIMING
