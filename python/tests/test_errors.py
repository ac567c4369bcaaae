"""Every error path raises armt.Error carrying the status and the library's message (the messages checked
here hold details only the library knows: paths, ids, sizes)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import armt
from conftest import ARMT_REF, TOKENIZER


def raises(status, fn, *args, **kwargs):
    with pytest.raises(armt.Error) as e:
        fn(*args, **kwargs)
    assert e.value.status == status, str(e.value)
    assert isinstance(e.value, RuntimeError)
    assert e.value.message and e.value.message in str(e.value)
    return e.value.message


def test_wrong_path(rt):
    msg = raises(armt.Status.IO_ERROR, rt.load_model, "/nonexistent/dir/model")
    assert "/nonexistent/dir/model" in msg
    msg = raises(armt.Status.BAD_FILE, rt.load_model, os.path.join(ARMT_REF, "config.json"))
    assert "config.json" in msg


def test_bad_ids(tiny):
    with tiny.context() as ctx:
        msg = raises(armt.Status.TOKEN_OUT_OF_RANGE, ctx.forward, [1, 2, 999])
        assert "999" in msg and "256" in msg  # the id and the vocabulary, from the library
        msg = raises(armt.Status.TOKEN_OUT_OF_RANGE, ctx.forward, np.array([-5]))
        assert "-5" in msg
        msg = raises(armt.Status.TOKEN_OUT_OF_RANGE, ctx.generate, [1, 2, 999], 2)
        assert "999" in msg
        raises(armt.Status.TOKEN_OUT_OF_RANGE, ctx.forward, [2**40])  # not an int32: found here
        raises(armt.Status.EMPTY_INPUT, ctx.forward, [])
        raises(armt.Status.EMPTY_INPUT, ctx.generate, np.zeros(0, np.int32), 2)
        raises(armt.Status.INVALID_ARGUMENT, ctx.forward, [1.5, 2.0])
        raises(armt.Status.INVALID_ARGUMENT, ctx.forward, [[1, 2], [3, 4]])
        raises(armt.Status.INVALID_ARGUMENT, ctx.forward, object())


def test_too_small_buffer(tiny):
    with tiny.context() as ctx:
        msg = raises(armt.Status.INVALID_ARGUMENT, ctx.forward, [1, 2], out=np.empty(10, np.float32))
        assert "10" in msg and str(2 * tiny.config.vocab_size) in msg
        raises(armt.Status.INVALID_ARGUMENT, ctx.forward, [1, 2], out=np.empty(1000, np.float64))


def test_bad_names_and_options(rt, tiny):
    with tiny.context() as ctx:
        raises(armt.Status.INVALID_ARGUMENT, ctx.forward, [1], schedule="diag")
        raises(armt.Status.INVALID_ARGUMENT, ctx.forward, [1], output="everything")
        msg = raises(armt.Status.INVALID_ARGUMENT, ctx.generate, [1, 2], 4, schedule="full")
        assert "schedule" in msg
        raises(armt.Status.INVALID_ARGUMENT, ctx.generate, [1, 2], -1)
    raises(armt.Status.INVALID_ARGUMENT, rt.random_model, "tiny", precision="fp8")
    msg = raises(armt.Status.INVALID_ARGUMENT, rt.random_model, "huge")
    assert "huge" in msg
    msg = raises(armt.Status.BAD_CONFIG, rt.random_model, "tiny", n_heads=3)
    assert "n_heads" in msg
    with pytest.raises(TypeError):
        rt.random_model("tiny", no_such_field=1)


def test_no_such_device():
    msg = raises(armt.Status.NO_DEVICE, armt.Runtime, device="no-such-device-anywhere")
    assert "no-such-device-anywhere" in msg


def test_tokenizer_errors():
    msg = raises(armt.Status.IO_ERROR, armt.Tokenizer, "/nonexistent/tokenizer.json")
    assert "/nonexistent/tokenizer.json" in msg
    with armt.Tokenizer(TOKENIZER) as tok:
        msg = raises(armt.Status.TOKEN_OUT_OF_RANGE, tok.decode, [1, 5000])
        assert "5000" in msg


def test_memory_file_errors(tiny, tmp_path):
    with tiny.context() as ctx:
        msg = raises(armt.Status.IO_ERROR, ctx.load_memory, "/nonexistent/state")
        assert "/nonexistent/state" in msg
        junk = tmp_path / "junk"
        junk.write_bytes(b"not a state file at all" * 10)
        with pytest.raises(armt.Error) as e:
            ctx.load_memory(junk)
        assert e.value.status in (armt.Status.BAD_FILE, armt.Status.IO_ERROR) and e.value.message
        raises(armt.Status.IO_ERROR, ctx.save_memory, "/nonexistent/dir/state")


def test_closed_handles(rt):
    m = rt.random_model("tiny")
    ctx = m.context()
    ctx.close()
    msg = raises(armt.Status.INVALID_ARGUMENT, ctx.forward, [1])
    assert "closed" in msg
    m.close()
    raises(armt.Status.INVALID_ARGUMENT, m.context)
    with pytest.raises(armt.Error):
        with ctx:
            pass


def test_library_not_found():
    # a fresh interpreter where no discovery step finds the library
    code = ("import ctypes.util, armt, armt._lib as L\n"
            "L._pkg_config_libdir = lambda: (None, 'pkg-config: disabled by the test')\n"
            "ctypes.util.find_library = lambda name: None\n"
            "try:\n    armt.version()\nexcept armt.LibraryNotFound as e:\n    print('NOTFOUND', e)\n")
    env = dict(os.environ, ARMT_LIBRARY="/nonexistent/libarmt.so")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=os.path.dirname(os.path.dirname(armt.__file__)))
    assert "NOTFOUND" in r.stdout, r.stdout + r.stderr
    assert "ARMT_LIBRARY=/nonexistent/libarmt.so" in r.stdout


def test_library_log_goes_to_logging(caplog):
    import logging
    armt.enable_logging()
    try:
        with caplog.at_level(logging.DEBUG, logger="armt"):
            armt.Runtime().close()
    finally:
        armt.enable_logging(False)
    # the runtime reports its device and build options at INFO (lib/device/runtime.c)
    assert any(r.name == "armt" and "runtime:" in r.getMessage() for r in caplog.records)


def test_error_pickles(tiny):
    import pickle
    with tiny.context() as ctx:
        with pytest.raises(armt.Error) as e:
            ctx.forward([7, 300])
    e2 = pickle.loads(pickle.dumps(e.value))
    assert e2.status == armt.Status.TOKEN_OUT_OF_RANGE and e2.message == e.value.message
    assert str(e2) == str(e.value)
