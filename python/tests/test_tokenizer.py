"""The tokenizer against HF tokenizers' outputs (tests/data/tokenizer/cases.json)."""

import json
import os

import pytest

import armt
from conftest import DATA, TOKENIZER


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(DATA, "tokenizer", "cases.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def tok():
    with armt.Tokenizer(TOKENIZER) as t:
        yield t


def test_encode_decode_match_hf(tok, cases):
    assert tok.vocab_size == cases["vocab_size"] == len(tok)
    for c in cases["encode"]:
        assert tok.encode(c["text"], add_bos=False) == c["ids"], c["text"]
        assert tok.encode(c["text"]) == c["ids_bos"], c["text"]
        assert tok.encode(c["text"], add_bos=False, parse_special=False) == c["ids_literal"], c["text"]
        assert tok.decode(c["ids"]) == c["decoded"]
        assert tok.decode(c["ids"], skip_special=True) == c["decoded_skip"]
    for c in cases["decode"]:
        assert tok.decode(c["ids"]) == c["text"]
        assert tok.decode(c["ids"], skip_special=True) == c["text_skip"]


def test_long_text_grows_the_buffers(tok):
    text = "Hello world! " * 2000
    ids = tok.encode(text, add_bos=False)
    assert len(ids) > 1000
    assert tok.decode(ids) == text


def test_token_id(tok):
    assert tok.token_id("<|begin_of_text|>") == tok.encode("", add_bos=True)[0]
    assert tok.token_id("no such token at all") is None
