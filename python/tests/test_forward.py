"""Forward passes against the reference fixtures (tests/data/armt_ref, made by the ARMT authors' PyTorch
code) and against armt-run on the same inputs; the input types; progress callbacks."""

import os

import numpy as np
import pytest

import armt
from conftest import ARMT_REF, read_safetensors


@pytest.mark.parametrize("schedule", ["diagonal", "sequential"])
def test_logits_and_memory_match_reference(ref_model, ref_ids, expected, schedule):
    with ref_model.context() as ctx:
        logits = ctx.forward(ref_ids, schedule=schedule, output="logits")
        assert logits.shape == (30, 96) and logits.dtype == np.float32
        # the tolerance of tests/test_armt_run.sh (issue 4)
        np.testing.assert_allclose(logits, expected["logits"], rtol=0, atol=2e-4)
        mem = ctx.memory
        np.testing.assert_allclose(mem.w_mem, expected["W_mem"], rtol=0, atol=2e-4)
        np.testing.assert_allclose(mem.z, expected["z"], rtol=0, atol=2e-4)
        assert mem.written.all()


def test_a_wrong_output_fails_the_comparison(ref_model, ref_ids, expected):
    # the comparison above can fail: a context that skips the memory (full schedule) differs
    with ref_model.context() as ctx:
        full = ctx.forward(ref_ids, schedule="full")
    assert np.abs(full - expected["logits"]).max() > 1e-2


@pytest.mark.parametrize("schedule", ["diagonal", "sequential"])
def test_outputs_equal_armt_run(ref_model, ref_ids, armt_run, tmp_path, schedule):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(" ".join(map(str, ref_ids.tolist())))
    out = tmp_path / "out.safetensors"
    mem_file = tmp_path / "mem.bin"
    armt_run("--model", os.path.join(ARMT_REF, "model_saved.safetensors"), "--ids", ids_file, "--schedule",
             schedule, "--save-outputs", out, "--save-memory", mem_file)
    want = read_safetensors(str(out))
    with ref_model.context() as ctx:
        logits = ctx.forward(ref_ids, schedule=schedule, output="logits")
        mem = ctx.memory
        ctx.reset()
        hidden = ctx.forward(ref_ids, schedule=schedule, output="hidden")
        ctx.reset()
        last = ctx.forward(ref_ids, schedule=schedule, output="last")
        # the state armt-run saved loads into this context and equals the one computed here
        ctx.reset()
        ctx.load_memory(mem_file)
        loaded = ctx.memory
    np.testing.assert_array_equal(logits, want["logits"])
    np.testing.assert_array_equal(hidden, want["hidden"])
    np.testing.assert_allclose(last, want["logits"][-1], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(mem.w_mem, want["memory.W_mem"])
    np.testing.assert_array_equal(mem.z, want["memory.z"])
    np.testing.assert_array_equal(loaded.w_mem, want["memory.W_mem"])
    np.testing.assert_array_equal(want["input_ids"], ref_ids)


def test_full_schedule_equals_armt_run_and_leaves_memory(ref_model, ref_ids, armt_run, tmp_path):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(",".join(map(str, ref_ids.tolist())))
    out = tmp_path / "out.safetensors"
    armt_run("--model", os.path.join(ARMT_REF, "model_saved.safetensors"), "--ids", ids_file, "--schedule", "full",
             "--output", "logits", "--save-outputs", out)
    with ref_model.context() as ctx:
        got = ctx.forward(ref_ids, schedule="full")
        assert not ctx.memory.written.any()
    np.testing.assert_array_equal(got, read_safetensors(str(out))["logits"])


def test_output_none_and_last(tiny):
    ids = np.arange(40) % 200
    with tiny.context() as a, tiny.context() as b:
        assert a.forward(ids, output=None) is None
        full = b.forward(ids, output="logits")
        # the memory state is the same whatever is copied out
        np.testing.assert_array_equal(a.memory.w_mem, b.memory.w_mem)
        a.reset()
        last = a.forward(ids, output="last")
    assert last.shape == (tiny.config.vocab_size,)
    np.testing.assert_allclose(last, full[-1], rtol=0, atol=1e-5)


def test_memory_persists_across_calls(tiny):
    # feeding whole segments in two calls equals one call (README, "Using the library")
    seg = tiny.config.segment_size
    ids = (np.arange(3 * seg) * 7) % 250
    with tiny.context() as one, tiny.context() as two:
        all_at_once = one.forward(ids)
        first = two.forward(ids[:seg])
        rest = two.forward(ids[seg:])
    np.testing.assert_allclose(np.vstack([first, rest]), all_at_once, rtol=0, atol=1e-4)
    assert np.abs(rest - two.model.context().forward(ids[seg:])).max() > 1e-4  # the memory matters


class ArrayInterfaceOnly:
    """Something that is not a list and not a numpy array, exposing only __array_interface__."""

    def __init__(self, a):
        self._a = np.ascontiguousarray(a)
        self.__array_interface__ = self._a.__array_interface__


class DLPackOnly:
    """Exposes only the DLPack protocol (as torch, jax and cupy tensors do)."""

    def __init__(self, a):
        self._a = np.ascontiguousarray(a)

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class ArrayMethodOnly:
    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._a, dtype=dtype)


def test_input_types(tiny):
    ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3]
    with tiny.context() as ctx:
        want = ctx.forward(ids, schedule="full")
        variants = [tuple(ids), np.array(ids, dtype=np.int64), np.array(ids, dtype=np.uint16),
                    np.array(ids, dtype=np.int32)[::-1][::-1], np.array([ids]), ArrayInterfaceOnly(np.array(ids)),
                    ArrayMethodOnly(ids)]
        if hasattr(np.ndarray, "__dlpack__"):
            variants.append(DLPackOnly(np.array(ids, dtype=np.int64)))
        for v in variants:
            np.testing.assert_array_equal(ctx.forward(v, schedule="full"), want, err_msg=type(v).__name__)


def test_torch_tensor_if_installed(tiny):
    torch = pytest.importorskip("torch")
    ids = [5, 4, 3, 2, 1]
    with tiny.context() as ctx:
        np.testing.assert_array_equal(ctx.forward(torch.tensor(ids), schedule="full"),
                                      ctx.forward(ids, schedule="full"))


def test_out_buffer(tiny):
    ids = list(range(20))
    with tiny.context() as ctx:
        want = ctx.forward(ids, schedule="full")
        out = np.full(want.size + 5, -1, dtype=np.float32)
        got = ctx.forward(ids, schedule="full", out=out)
        np.testing.assert_array_equal(got, want)
        assert np.shares_memory(got, out) and out[-1] == -1


def test_progress_callback(tiny):
    seg = tiny.config.segment_size
    n_layers = tiny.config.n_layers
    ids = np.arange(4 * seg) % 200
    calls = []
    with tiny.context() as ctx:
        ctx.forward(ids, progress=lambda done, total: calls.append((done, total)))
    # the diagonal schedule: S + Lyr - 1 steps (include/armt.h)
    total = 4 + n_layers - 1
    assert calls == [(d, total) for d in range(1, total + 1)]


def test_progress_exception_propagates(tiny):
    def boom(done, total):
        raise KeyError("from the callback")
    with tiny.context() as ctx:
        with pytest.raises(KeyError, match="from the callback"):
            ctx.forward(list(range(40)), progress=boom)


def test_progress_tqdm(tiny, capsys):
    pytest.importorskip("tqdm")
    with tiny.context() as ctx:
        ctx.forward(list(range(40)), progress=True)
    assert "step" in capsys.readouterr().err
