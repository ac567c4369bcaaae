"""The memory state: get/set, save/load round trips, reset, and a state of another model refused."""

import numpy as np
import pytest

import armt


def _ids(n, k=7):
    return (np.arange(n) * k + 3) % 250


def test_get_set_round_trip(tiny):
    seg = tiny.config.segment_size
    with tiny.context() as a, tiny.context() as b:
        a.forward(_ids(2 * seg))
        snap = a.memory
        assert snap.w_mem.shape == (3, tiny.config.d_key, 64) and snap.z.shape == (3, tiny.config.d_key)
        assert np.abs(snap.w_mem).max() > 0
        want = a.forward(_ids(seg, 11))
        # the same state in another context gives the same next output
        b.memory = snap
        np.testing.assert_array_equal(b.forward(_ids(seg, 11)), want)
        # and restoring it in the first context too
        a.memory = snap
        np.testing.assert_array_equal(a.forward(_ids(seg, 11)), want)
        # a tuple (w_mem, z) means every layer written; a dict works too
        b.memory = (snap.w_mem, snap.z)
        np.testing.assert_array_equal(b.forward(_ids(seg, 11)), want)
        b.memory = {"w_mem": snap.w_mem.tolist(), "z": snap.z, "written": snap.written}
        np.testing.assert_array_equal(b.forward(_ids(seg, 11)), want)
        # a fresh state gives another output (the comparison above can fail)
        b.reset()
        assert np.abs(b.forward(_ids(seg, 11)) - want).max() > 1e-4


def test_save_load_round_trip(tiny, tmp_path):
    path = tmp_path / "state.armt"
    with tiny.context() as ctx:
        ctx.forward(_ids(40))
        before = ctx.memory
        ctx.save_memory(path)
        want = ctx.forward(_ids(16, 5))
        ctx.reset()
        zero = ctx.memory
        assert not zero.written.any() and not zero.w_mem.any() and not zero.z.any()
        ctx.load_memory(str(path))
        after = ctx.memory
        np.testing.assert_array_equal(after.w_mem, before.w_mem)
        np.testing.assert_array_equal(after.z, before.z)
        np.testing.assert_array_equal(after.written, before.written)
        np.testing.assert_array_equal(ctx.forward(_ids(16, 5)), want)


def test_reset_equals_fresh_context(tiny):
    with tiny.context() as a, tiny.context() as b:
        a.forward(_ids(50))
        a.reset()
        np.testing.assert_array_equal(a.forward(_ids(33)), b.forward(_ids(33)))


def test_state_of_another_model_is_refused(rt, tiny, tmp_path):
    path = tmp_path / "other.armt"
    with rt.random_model("tiny", seed=2, wmv_std=0.02) as other, other.context() as octx:
        assert other.fingerprint != tiny.fingerprint
        octx.forward(_ids(20))
        octx.save_memory(path)
    with tiny.context() as ctx:
        ctx.forward(_ids(20, 3))
        before = ctx.memory
        with pytest.raises(armt.Error) as e:
            ctx.load_memory(path)
        assert e.value.status == armt.Status.MODEL_MISMATCH
        assert e.value.message
        np.testing.assert_array_equal(ctx.memory.w_mem, before.w_mem)  # unchanged


def test_failed_forward_leaves_the_state(tiny):
    with tiny.context() as ctx:
        ctx.forward(_ids(20))
        before = ctx.memory
        with pytest.raises(armt.Error):
            ctx.forward([1, 2, 3, 100000])
        np.testing.assert_array_equal(ctx.memory.w_mem, before.w_mem)


@pytest.mark.parametrize("bad", ["w", "z", "written", "type"])
def test_set_wrong_sizes(tiny, bad):
    with tiny.context() as ctx:
        m = ctx.memory
        state = {"w": (m.w_mem[:1], m.z, m.written), "z": (m.w_mem, m.z[:, :3], m.written),
                 "written": (m.w_mem, m.z, m.written[:2]), "type": 42}[bad]
        with pytest.raises(armt.Error) as e:
            ctx.memory = state
        assert e.value.status == armt.Status.INVALID_ARGUMENT
