"""API token format: new_token, split, digest and matches."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vcisc.federation.tokens import PREFIX, NewToken, digest, matches, new_token, split

URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_prefix() -> None:
    assert PREFIX == "vcisc"


def test_new_token_format() -> None:
    token = new_token()
    assert re.fullmatch(r"[0-9a-f]{12}", token.key_id)
    # 32 random bytes, url-safe base64 without padding = 43 characters (256 bits).
    assert len(token.secret) == 43
    assert URLSAFE.match(token.secret)
    assert token.text == f"vcisc_{token.key_id}_{token.secret}"


def test_new_tokens_are_unique() -> None:
    tokens = [new_token() for _ in range(200)]
    assert len({t.key_id for t in tokens}) == 200
    assert len({t.secret for t in tokens}) == 200


def test_new_token_round_trips_through_split() -> None:
    for _ in range(200):  # secrets may contain '_' and '-'; the key id never does
        token = new_token()
        assert split(token.text) == (token.key_id, token.secret)


def test_text_property() -> None:
    assert NewToken("abc123", "s3cr_et").text == "vcisc_abc123_s3cr_et"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vcisc_abc_def", ("abc", "def")),
        ("vcisc_abc_de_f_g", ("abc", "de_f_g")),
        ("vcisc_abc_-x-", ("abc", "-x-")),
        ("  vcisc_abc_def\n", ("abc", "def")),
        ("vcisc_abc__", ("abc", "_")),
    ],
)
def test_split_well_formed(text: str, expected: tuple[str, str]) -> None:
    assert split(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "vcisc",
        "vcisc_",
        "vcisc_abc",
        "vcisc_abc_",
        "vcisc__def",
        "vcisc___",
        "VCISC_abc_def",
        "other_abc_def",
        "vciscx_abc_def",
        "abc_def",
        "Bearer vcisc_abc_def",
        "vcisc-abc-def",
    ],
)
def test_split_malformed(text: str) -> None:
    assert split(text) is None


def test_digest_is_sha256_hex() -> None:
    assert digest("secret") == hashlib.sha256(b"secret").hexdigest()
    assert digest("secret") == "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
    assert digest("secret") != digest("Secret")


def test_matches() -> None:
    token = new_token()
    stored = digest(token.secret)
    assert matches(token.secret, stored)
    assert not matches(token.secret + "x", stored)
    assert not matches(token.secret[:-1], stored)
    assert not matches(new_token().secret, stored)
    assert not matches(token.secret, "")
    assert not matches(token.secret, stored.upper())
    # The digest of the whole token text is not the digest of the secret.
    assert not matches(token.text, stored)


@given(st.text(min_size=1), st.text(min_size=1))
def test_matches_property(a: str, b: str) -> None:
    assert matches(a, digest(a))
    assert matches(b, digest(a)) is (a == b)
