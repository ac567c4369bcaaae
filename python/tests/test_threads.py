"""Two threads, two contexts on one model: the same results as one thread (ctypes releases the GIL during
each library call, so the two forward passes really overlap)."""

import threading

import numpy as np


def _inputs(k, seg):
    return (np.arange(3 * seg) * (k + 3) + k) % 250


def test_two_threads_two_contexts(tiny):
    seg = tiny.config.segment_size
    inputs = [_inputs(k, seg) for k in range(2)]
    rounds = 5

    def run(ctx, ids):
        outs = []
        for _ in range(rounds):
            outs.append(ctx.forward(ids))  # memory carried from round to round
            gen = ctx.generate(ids, 4)
            outs.append(gen.astype(np.float32))
        return outs

    # single thread: one context after the other
    want = []
    for ids in inputs:
        with tiny.context() as ctx:
            want.append(run(ctx, ids))
    assert not np.array_equal(want[0][0], want[1][0])

    got = [None, None]
    errors = []

    def worker(i, ctx):
        try:
            got[i] = run(ctx, inputs[i])
        except BaseException as e:
            errors.append(e)

    ctxs = [tiny.context(), tiny.context()]
    threads = [threading.Thread(target=worker, args=(i, ctxs[i])) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in ctxs:
        c.close()
    assert not errors, errors
    for i in range(2):
        for a, b in zip(got[i], want[i]):
            np.testing.assert_array_equal(a, b)


def test_threads_create_their_own_contexts(rt):
    # models and contexts may be created concurrently (include/armt.h)
    with rt.random_model("tiny-gqa", seed=5, wmv_std=0.02) as model:
        with model.context() as ctx:
            want = ctx.forward(np.arange(40) % 200, output="last")
        results = []

        def worker():
            with model.context() as c:
                results.append(c.forward(np.arange(40) % 200, output="last"))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 4
        for r in results:
            np.testing.assert_array_equal(r, want)
