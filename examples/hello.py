#!/usr/bin/env python3
"""examples/hello.py - libarmt from Python: a forward pass and a short generation with a tiny random model.

After `make install` and `pip install ./python` (or in a build tree: ARMT_LIBRARY=.libs/libarmt.so
PYTHONPATH=python), from the repository root:

    python3 examples/hello.py [tests/data/tokenizer/tokenizer.json]
"""
import os
import sys

import armt

here = os.path.dirname(os.path.abspath(__file__))
tok_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "data", "tokenizer",
                                                                "tokenizer.json")

tok = armt.Tokenizer(tok_path)
with armt.Runtime() as rt:                                        # the best OpenCL device
    model = rt.random_model("tiny", seed=1, vocab_size=tok.vocab_size)  # or rt.load_model("checkpoint-dir")
    ctx = model.context()
    ids = tok.encode("Hello world")                               # BOS + the text's tokens
    logits = ctx.forward(ids)                                     # diagonal schedule: float32 [len(ids), vocab]
    print("device:", rt.device.name, "| logits", logits.shape, "| argmax of the last token:", logits[-1].argmax())
    ctx.reset()                                                   # the memory state persists across calls
    new = ctx.generate(ids, 16, on_token=lambda t: print(tok.decode([t]), end="", flush=True))
    print("\n%d new tokens: %s" % (len(new), new.tolist()))
