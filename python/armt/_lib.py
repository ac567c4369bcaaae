"""ctypes declarations of libarmt's public API (include/armt.h) and the library's discovery.

The structures below mirror include/armt.h field by field, in order. The library has no ABI stability
before 1.0 (armt.h: parameter structs only grow at their end), so `load()` compares the library's version
with the one these declarations were written for and warns when the major or minor version differs.

Discovery order (the first that exists wins):
  1. $ARMT_LIBRARY: the path of libarmt.so (or of the directory that holds it);
  2. `pkg-config --variable=libdir armt` (the installed library; PKG_CONFIG_PATH is honoured);
  3. ctypes.util.find_library("armt") (the dynamic loader's search path).

Every call goes through ctypes.CDLL, which releases the GIL for the duration of each foreign call, so
forward passes and generation on several threads run concurrently.
"""

import ctypes
import ctypes.util
import glob
import os
import shutil
import subprocess
import threading
import warnings
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_size_t,
                    c_uint, c_uint8, c_uint64, c_void_p)

c_int32 = ctypes.c_int32

# the version of include/armt.h these declarations mirror
HEADER_VERSION = (0, 2, 0)


class DeviceInfo(Structure):
    _fields_ = [
        ("platform_index", c_int),
        ("device_index", c_int),
        ("platform_name", c_char * 128),
        ("name", c_char * 128),
        ("vendor", c_char * 128),
        ("driver_version", c_char * 128),
        ("device_version", c_char * 128),
        ("opencl_c_version", c_char * 128),
        ("is_gpu", c_int),
        ("is_cpu", c_int),
        ("compute_units", c_uint),
        ("global_mem_bytes", c_uint64),
        ("max_alloc_bytes", c_uint64),
        ("local_mem_bytes", c_uint64),
        ("has_fp16", c_int),
        ("has_fp64", c_int),
        ("nv_compute_capability", c_int),
    ]


class RuntimeParams(Structure):
    _fields_ = [
        ("platform", c_char_p),
        ("device", c_char_p),
        ("kernel_dir", c_char_p),
        ("build_options", c_char_p),
        ("profile", c_int),
        ("tensor_cores", c_int),
        ("wgmma", c_int),
        ("attention", c_int),
        ("fp32_gemm", c_int),
    ]


class Config(Structure):
    _fields_ = [
        ("hidden_size", c_int),
        ("n_layers", c_int),
        ("n_heads", c_int),
        ("n_kv_heads", c_int),
        ("head_dim", c_int),
        ("intermediate_size", c_int),
        ("vocab_size", c_int),
        ("rms_norm_eps", c_float),
        ("rope_theta", c_double),
        ("rope_type", c_int),
        ("rope_factor", c_double),
        ("rope_low_freq_factor", c_double),
        ("rope_high_freq_factor", c_double),
        ("rope_original_max_pos", c_int),
        ("tie_word_embeddings", c_int),
        ("num_mem_tokens", c_int),
        ("d_mem", c_int),
        ("segment_size", c_int),
        ("correction", c_int),
        # the ARMT variant (docs/VARIANTS.md); zeros are the paper's math
        ("variant", c_int),
        ("mem_heads", c_int),
        ("no_denom", c_int),
        ("gating", c_int),
        ("use_sink", c_int),
        ("sliding_window", c_int),
        ("memory_off", c_uint64 * 4),
    ]


class ModelParams(Structure):
    _fields_ = [
        ("segment_size", c_int),
        ("num_mem_tokens", c_int),
        ("d_mem", c_int),
        ("correction", c_int),
        ("seed", c_uint64),
        ("wmv_std", c_float),
        ("precision", c_int),
        ("base_model_dir", ctypes.c_char_p),
    ]


class CtxParams(Structure):
    _fields_ = [("profile", c_int), ("reserved", c_int * 7)]


# armt_progress_fn: declared with an int result (non-zero asks the library to cancel). A library whose
# callback type still returns void ignores the value, so this works with both.
PROGRESS_FN = CFUNCTYPE(c_int, c_uint64, c_uint64, c_void_p)
TOKEN_FN = CFUNCTYPE(c_int, c_int32, c_void_p)
LOG_FN = CFUNCTYPE(None, c_int, c_char_p, c_void_p)


class ForwardParams(Structure):
    _fields_ = [
        ("schedule", c_int),
        ("output", c_int),
        ("out", POINTER(c_float)),
        ("out_count", c_size_t),
        ("progress", PROGRESS_FN),
        ("progress_user_data", c_void_p),
        ("no_profile", c_int),
        ("all_rows", c_int),
    ]


class Stats(Structure):
    _fields_ = [
        ("steps", c_uint64),
        ("cells", c_uint64),
        ("kernel_launches", c_uint64),
        ("gemm_calls", c_uint64),
        ("device_bytes", c_uint64),
        ("peak_device_bytes", c_uint64),
        ("seconds", c_double),
    ]


class GenerateParams(Structure):
    _fields_ = [
        ("schedule", c_int),
        ("max_new_tokens", c_int),
        ("stop_id", c_int32),
        ("temperature", c_float),
        ("top_k", c_int),
        ("top_p", c_float),
        ("seed", c_uint64),
        ("on_token", TOKEN_FN),
        ("user_data", c_void_p),
        ("progress", PROGRESS_FN),  # since 0.2.0
        ("progress_user_data", c_void_p),
    ]


class GenerateResult(Structure):
    _fields_ = [
        ("n_tokens", c_size_t),
        ("prompt_tokens", c_size_t),
        ("tail_tokens", c_size_t),
        ("prefill_seconds", c_double),
        ("decode_seconds", c_double),
        ("stopped", c_int),
    ]


P = c_void_p  # every handle is an opaque pointer

# name: (result type, argument types)
_SIGNATURES = {
    "armt_status_str": (c_char_p, [c_int]),
    "armt_last_error": (c_char_p, []),
    "armt_log_set": (None, [LOG_FN, c_void_p]),
    "armt_version_number": (c_uint, []),
    "armt_version_string": (c_char_p, []),
    "armt_build_info": (c_char_p, []),
    "armt_device_list": (c_int, [POINTER(POINTER(DeviceInfo)), POINTER(c_size_t)]),
    "armt_device_list_free": (None, [POINTER(DeviceInfo)]),
    "armt_runtime_default_params": (RuntimeParams, []),
    "armt_runtime_create": (c_int, [POINTER(RuntimeParams), POINTER(P)]),
    "armt_runtime_free": (None, [P]),
    "armt_runtime_device_info": (c_int, [P, POINTER(DeviceInfo)]),
    "armt_runtime_last_error": (c_char_p, [P]),
    "armt_config_preset": (c_int, [c_char_p, POINTER(Config)]),
    "armt_config_preset_names": (POINTER(c_char_p), []),
    "armt_config_d_key": (c_int, [POINTER(Config)]),
    "armt_model_default_params": (ModelParams, []),
    "armt_model_create_random": (c_int, [P, POINTER(Config), POINTER(ModelParams), POINTER(P)]),
    "armt_model_load": (c_int, [P, c_char_p, POINTER(ModelParams), POINTER(P)]),
    "armt_model_save": (c_int, [P, c_char_p]),
    "armt_model_free": (None, [P]),
    "armt_model_config": (POINTER(Config), [P]),
    "armt_model_precision": (c_int, [P]),
    "armt_model_device_bytes": (c_uint64, [P]),
    "armt_model_fingerprint": (c_uint64, [P]),
    "armt_model_last_error": (c_char_p, [P]),
    "armt_ctx_default_params": (CtxParams, []),
    "armt_ctx_create": (c_int, [P, POINTER(CtxParams), POINTER(P)]),
    "armt_ctx_free": (None, [P]),
    "armt_ctx_last_error": (c_char_p, [P]),
    "armt_ctx_reset": (c_int, [P]),
    "armt_ctx_memory_w_count": (c_size_t, [P]),
    "armt_ctx_memory_z_count": (c_size_t, [P]),
    "armt_ctx_memory_get": (c_int, [P, c_void_p, c_void_p, c_void_p]),
    "armt_ctx_memory_set": (c_int, [P, c_void_p, c_void_p, c_void_p]),
    "armt_ctx_memory_save": (c_int, [P, c_char_p]),
    "armt_ctx_memory_load": (c_int, [P, c_char_p]),
    "armt_forward_default_params": (ForwardParams, []),
    "armt_output_count": (c_size_t, [P, c_int, c_size_t]),
    "armt_forward": (c_int, [P, c_void_p, c_size_t, POINTER(ForwardParams)]),
    "armt_ctx_stats": (c_int, [P, POINTER(Stats)]),
    "armt_tokenizer_load": (c_int, [c_char_p, POINTER(P)]),
    "armt_tokenizer_free": (None, [P]),
    "armt_tokenizer_last_error": (c_char_p, [P]),
    "armt_tokenizer_encode": (c_int, [P, c_char_p, c_size_t, c_int, c_int, c_void_p, c_size_t,
                                      POINTER(c_size_t)]),
    "armt_tokenizer_decode": (c_int, [P, c_void_p, c_size_t, c_int, c_void_p, c_size_t, POINTER(c_size_t)]),
    "armt_tokenizer_vocab_size": (c_int32, [P]),
    "armt_tokenizer_token_id": (c_int32, [P, c_char_p]),
    "armt_generate_default_params": (GenerateParams, []),
    "armt_generate": (c_int, [P, c_void_p, c_size_t, POINTER(GenerateParams), c_void_p, c_size_t,
                              POINTER(GenerateResult)]),
}


class LibraryNotFound(OSError):
    """libarmt.so could not be found or loaded; the message lists every place that was tried."""


def _pkg_config_libdir():
    exe = shutil.which("pkg-config") or shutil.which("pkgconf")
    if not exe:
        return None, "pkg-config: not installed"
    try:
        r = subprocess.run([exe, "--variable=libdir", "armt"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return None, "pkg-config: %s" % e
    libdir = r.stdout.strip()
    if r.returncode != 0 or not libdir:
        return None, "pkg-config --variable=libdir armt: no armt.pc found (PKG_CONFIG_PATH=%s)" % (
            os.environ.get("PKG_CONFIG_PATH", ""))
    return libdir, None


def _in_dir(d):
    """libarmt.so in directory d, else its versioned name (libarmt.so.0...), else None."""
    p = os.path.join(d, "libarmt.so")
    if os.path.exists(p):
        return p
    versioned = sorted(glob.glob(os.path.join(d, "libarmt.so.*")))
    return versioned[0] if versioned else None


def find_library():
    """The path or name of libarmt to load, and the list of places tried (for the error message)."""
    tried = []
    env = os.environ.get("ARMT_LIBRARY")
    if env:
        path = _in_dir(env) if os.path.isdir(env) else env
        if path and os.path.exists(path):
            return path, tried
        tried.append("ARMT_LIBRARY=%s: no such file" % env)
    else:
        tried.append("ARMT_LIBRARY: not set")
    libdir, why = _pkg_config_libdir()
    if libdir:
        path = _in_dir(libdir)
        if path:
            return path, tried
        tried.append("pkg-config libdir %s: no libarmt.so there" % libdir)
    else:
        tried.append(why)
    name = ctypes.util.find_library("armt")
    if name:
        return name, tried
    tried.append('ctypes.util.find_library("armt"): not found')
    return None, tried


_lib = None
_lock = threading.Lock()


def load():
    """The loaded library (loaded once, on first use), with every function's signature declared."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        path, tried = find_library()
        if path is None:
            raise LibraryNotFound(
                "libarmt not found; build and install it (make install), or point ARMT_LIBRARY at libarmt.so "
                "(in a build tree: ARMT_LIBRARY=.libs/libarmt.so). Tried: " + "; ".join(tried))
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise LibraryNotFound("could not load %s: %s" % (path, e)) from e
        for name, (res, args) in _SIGNATURES.items():
            try:
                f = getattr(lib, name)
            except AttributeError as e:
                raise LibraryNotFound("%s has no %s: not libarmt, or a version this package does not know"
                                      % (path, name)) from e
            f.restype = res
            f.argtypes = args
        v = lib.armt_version_number()
        have = (v // 10000, v // 100 % 100)
        if have != HEADER_VERSION[:2]:
            warnings.warn("libarmt %s (%s) is not the version these bindings mirror (%d.%d.x); there is no ABI "
                          "stability before 1.0" % (lib.armt_version_string().decode(), path, *HEADER_VERSION[:2]),
                          RuntimeWarning, stacklevel=3)
        lib._armt_path = path
        _lib = lib
        return _lib
