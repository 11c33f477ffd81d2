from __future__ import annotations

import pytest

from herald.delivery import tokens
from herald.security import TokenSigner

SIGNER = TokenSigner(b"k" * 32)


def test_round_trip_per_purpose() -> None:
    made = tokens.make(SIGNER, tokens.UNSUBSCRIBE, "a" * 32)
    assert tokens.read(SIGNER, tokens.UNSUBSCRIBE, made) == "a" * 32
    assert made == tokens.make(SIGNER, tokens.UNSUBSCRIBE, "a" * 32)  # deterministic: same link every render


@pytest.mark.parametrize(
    "bad",
    ["", "a" * 32, "a" * 32 + ".", "a" * 32 + ".xyz", "../etc." + "A" * 22, "b" * 32 + ".AAAAAAAAAAAAAAAAAAAAAA"],
)
def test_tampered_or_made_up_tokens_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        tokens.read(SIGNER, tokens.UNSUBSCRIBE, bad)


def test_other_purpose_or_key_is_refused() -> None:
    made = tokens.make(SIGNER, tokens.OPEN, "a" * 32)
    with pytest.raises(ValueError):
        tokens.read(SIGNER, tokens.UNSUBSCRIBE, made)
    with pytest.raises(ValueError):
        tokens.read(TokenSigner(b"x" * 32), tokens.OPEN, made)
    swapped = "c" * 32 + made[32:]
    with pytest.raises(ValueError):
        tokens.read(SIGNER, tokens.OPEN, swapped)


def test_payload_must_be_url_safe() -> None:
    with pytest.raises(ValueError):
        tokens.make(SIGNER, tokens.OPEN, "a/b")
