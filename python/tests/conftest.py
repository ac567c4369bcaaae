"""Shared fixtures of the armt tests: the repository's test data (tests/data), a reader of safetensors
files (to read the fixtures and armt-run's --save-outputs files without extra packages), armt-run, and one
runtime for the whole session (kernels compile once)."""

import json
import os
import struct
import subprocess

import numpy as np
import pytest

import armt

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DATA = os.environ.get("ARMT_TEST_DATA", os.path.join(REPO, "tests", "data"))
ARMT_REF = os.path.join(DATA, "armt_ref")
TOKENIZER = os.path.join(DATA, "tokenizer", "tokenizer.json")

_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8,
           "F16": np.float16}


def read_safetensors(path):
    """{name: array} of a safetensors file (8-byte little-endian header length, JSON header, data)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[base + a:base + b], dtype=np.dtype(_DTYPES[t["dtype"]]).newbyteorder("<")) \
            .reshape(t["shape"])
    return out


def armt_run_path():
    p = os.environ.get("ARMT_RUN") or os.path.join(REPO, "src", "armt-run")
    return p if os.path.isfile(p) and os.access(p, os.X_OK) else None


@pytest.fixture(scope="session")
def armt_run():
    p = armt_run_path()
    if p is None:
        pytest.skip("armt-run not built (set ARMT_RUN or build the tree)")

    def run(*args):
        r = subprocess.run([p, *map(str, args)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, "armt-run %s failed:\n%s%s" % (" ".join(map(str, args)), r.stdout, r.stderr)
        return r
    return run


@pytest.fixture(scope="session")
def rt():
    try:
        r = armt.Runtime()
    except armt.Error as e:
        if e.status == armt.Status.NO_DEVICE:
            pytest.skip("no OpenCL device: %s" % e)
        raise
    yield r
    r.close()


@pytest.fixture(scope="session")
def expected():
    return read_safetensors(os.path.join(ARMT_REF, "expected.safetensors"))


@pytest.fixture(scope="session")
def ref_ids(expected):
    return expected["ids"].astype(np.int32)


@pytest.fixture(scope="session")
def ref_model(rt):
    """The ARMT authors' wrapper saved with safetensors (tests/data/armt_ref)."""
    m = rt.load_model(os.path.join(ARMT_REF, "model_saved.safetensors"))
    yield m
    m.close()


@pytest.fixture(scope="session")
def tiny(rt):
    """The tiny preset, random weights, memory path active."""
    m = rt.random_model("tiny", seed=1, wmv_std=0.02)
    yield m
    m.close()
