"""Generation against the ARMT authors' generate() (tests/data/armt_ref/generate.safetensors) and against
armt-run's generation (greedy and sampled) with the test tokenizer."""

import os

import numpy as np
import pytest

from conftest import ARMT_REF, TOKENIZER, read_safetensors

import armt


@pytest.fixture(scope="module")
def gen_ref():
    return read_safetensors(os.path.join(ARMT_REF, "generate.safetensors"))


@pytest.mark.parametrize("x", ["a", "b"])
def test_generate_matches_reference(ref_model, gen_ref, x):
    prompt = gen_ref["prompt_" + x].astype(np.int64)
    with ref_model.context() as ctx:
        got = ctx.generate(prompt, 6)
        assert ctx.last_generation["n_tokens"] == 6
        assert ctx.last_generation["prompt_tokens"] == prompt.size
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, gen_ref["tokens_" + x].astype(np.int32))
    # the memory matters: the no-memory decoding differs (so this comparison can fail)
    assert not np.array_equal(got, gen_ref["tokens_nomem_" + x].astype(np.int32))


def test_on_token_and_stop(ref_model, gen_ref):
    prompt = gen_ref["prompt_a"].astype(np.int32)
    seen = []
    with ref_model.context() as ctx:
        got = ctx.generate(prompt, 6, on_token=seen.append)
        assert seen == got.tolist()
        # generate leaves the memory as after the prompt's earlier segments: start again from zero
        ctx.reset()
        one = ctx.generate(prompt, 6, on_token=lambda t: True)
        assert one.tolist() == got[:1].tolist() and ctx.last_generation["stopped"] == 2
        # stop_id: stop after that token (included)
        stop = int(got[2])
        ctx.reset()
        until = ctx.generate(prompt, 6, stop_id=stop)
        first = got.tolist().index(stop)
        assert until.tolist() == got[:first + 1].tolist() and ctx.last_generation["stopped"] == 1


def test_on_token_exception_propagates(ref_model, gen_ref):
    def boom(t):
        raise ValueError("stop here")
    with ref_model.context() as ctx:
        with pytest.raises(ValueError, match="stop here"):
            ctx.generate(gen_ref["prompt_a"].astype(np.int32), 6, on_token=boom)


def _tiny_for_tokenizer(rt, tok):
    # armt-run --preset tiny --tokenizer ...: the preset's vocabulary enlarged to the tokenizer's
    return rt.random_model("tiny", seed=0, vocab_size=tok.vocab_size)


@pytest.mark.parametrize("sampling", [(), ("--temperature", "0.8", "--top-k", "40", "--top-p", "0.95",
                                           "--sample-seed", "7")])
def test_generate_equals_armt_run(rt, armt_run, sampling):
    r = armt_run("--preset", "tiny", "--seed", "0", "--tokenizer", TOKENIZER, "--prompt", "Hello world",
                 "--max-new", "16", "--print-ids", "-q", *sampling)
    want = [int(t) for t in r.stdout.split()]
    assert len(want) == 16
    with armt.Tokenizer(TOKENIZER) as tok, _tiny_for_tokenizer(rt, tok) as model, model.context() as ctx:
        ids = tok.encode("Hello world")  # with BOS, as armt-run's --prompt
        kw = {}
        if sampling:
            kw = dict(temperature=0.8, top_k=40, top_p=0.95, seed=7)
        got = ctx.generate(ids, 16, **kw)
        assert got.tolist() == want
        # the text armt-run would print
        assert isinstance(tok.decode(got), str)
