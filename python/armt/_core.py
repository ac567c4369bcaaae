"""The Python face of libarmt: Runtime, Model, Context and Tokenizer over the C handles of include/armt.h.

Handles: each object owns one C handle and frees it exactly once: on close(), at the end of a `with`
block, or when it is garbage collected (weakref.finalize, which also runs at interpreter exit, children
first). A child keeps its parent alive (a Context its Model, a Model its Runtime), and closing a parent
explicitly closes its children first, so no C handle ever outlives the one it was made from. Using a
closed object raises armt.Error.

Threads: ctypes.CDLL releases the GIL during every foreign call, so Context.forward and Context.generate
let other Python threads run, and two contexts on one model may run forward passes from two threads at
once (include/armt.h: one context is used by one thread at a time). Callbacks (progress, on_token)
take the GIL back while they run.
"""

import dataclasses
import enum
import logging
import os
import threading
import weakref
from collections import Counter, namedtuple
from ctypes import byref, c_size_t, c_void_p

import numpy as np

from . import _lib as L


# ---------------------------------------------------------------------------------------------------------
# Status and errors
# ---------------------------------------------------------------------------------------------------------

class Status(enum.IntEnum):
    """armt_status (values pinned by include/armt.h)."""
    OK = 0
    INVALID_ARGUMENT = -1
    NO_DEVICE = -2
    OPENCL_ERROR = -3
    CLBLAST_ERROR = -4
    KERNEL_BUILD_FAILED = -5
    OUT_OF_HOST_MEMORY = -6
    OUT_OF_DEVICE_MEMORY = -7
    IO_ERROR = -8
    BAD_FILE = -9
    BAD_CONFIG = -10
    MISSING_TENSOR = -11
    SHAPE_MISMATCH = -12
    UNSUPPORTED = -13
    TOKEN_OUT_OF_RANGE = -14
    MODEL_MISMATCH = -15
    EMPTY_INPUT = -16
    CANCELLED = -17


class Error(RuntimeError):
    """A libarmt call failed.

    status:  the armt_status (an armt.Status member; a plain int for a value this package does not know)
    message: the library's message for that failure (armt_last_error), or, for the few errors found on
             the Python side (closed handle, ids that are not integers), this package's
    function: the C function (or Python method) that failed
    """

    def __init__(self, status, message, function=None):
        try:
            status = Status(status)
        except ValueError:
            status = int(status)
        self.status = status
        self.message = message
        self.function = function
        what = _status_str(status)
        name = status.name if isinstance(status, Status) else str(int(status))
        text = "%s (%s)" % (what, name)
        if message:
            text += ": " + message
        elif function:
            text = function + ": " + text
        super().__init__(text)

    def __reduce__(self):  # picklable (multiprocessing), with its fields
        return (type(self), (int(self.status), self.message, self.function))


def _status_str(status):
    try:
        return L.load().armt_status_str(int(status)).decode("utf-8", "replace")
    except OSError:
        return "status %d" % int(status)


def _text(b):
    return b.decode("utf-8", "replace") if b else ""


def _check(st, function, handle_error=None):
    """Raises Error for a non-zero status, with the thread's last library message (else the handle's)."""
    if st == 0:
        return
    lib = L.load()
    msg = _text(lib.armt_last_error())
    if not msg and handle_error is not None:
        msg = _text(handle_error())
    raise Error(st, msg, function)


def _arg_error(function, message, status=Status.INVALID_ARGUMENT):
    return Error(status, message, function)


# ---------------------------------------------------------------------------------------------------------
# Handles
# ---------------------------------------------------------------------------------------------------------

_live = Counter()
_live_lock = threading.Lock()


def live_handles():
    """Counts of the C handles this process holds now, by kind ("runtime", "model", "context",
    "tokenizer"): every create adds one and every free removes it (for leak checks)."""
    with _live_lock:
        return {k: v for k, v in _live.items() if v}


def _release(free_name, ptr, kind, parent):  # parent: kept alive until the child is freed
    getattr(L.load(), free_name)(ptr)
    with _live_lock:
        _live[kind] -= 1


class _Handle:
    _kind = "handle"
    _free = None

    def _own(self, ptr, parent=None):
        self._handle = ptr
        self._children = weakref.WeakSet()
        with _live_lock:
            _live[self._kind] += 1
        self._finalizer = weakref.finalize(self, _release, self._free, ptr, self._kind, parent)
        if parent is not None:
            parent._children.add(self)

    @property
    def _ptr(self):
        fin = getattr(self, "_finalizer", None)
        if fin is None or not fin.alive:
            raise Error(Status.INVALID_ARGUMENT, "the %s is closed" % self._kind, type(self).__name__)
        return self._handle

    @property
    def closed(self):
        fin = getattr(self, "_finalizer", None)
        return fin is None or not fin.alive

    def close(self):
        """Frees the C handle (and first those of the children still open). Safe to call twice."""
        children = getattr(self, "_children", None)
        if children is not None:
            for c in list(children):
                c.close()
        fin = getattr(self, "_finalizer", None)
        if fin is not None:
            fin()  # weakref.finalize runs its function at most once

    def __enter__(self):
        self._ptr  # refuses a closed handle
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------------------------------------------------
# Names of the enums, as armt-run spells them
# ---------------------------------------------------------------------------------------------------------

_SCHEDULES = {"sequential": 0, "diagonal": 1, "full": 2}
_OUTPUTS = {None: 0, "none": 0, "logits": 1, "last": 2, "hidden": 3}
_PRECISIONS = {"fp32": 0, "bf16": 1}
_TENSOR_CORES = {"auto": 0, "off": 1, "on": 2, "emulate": 3}
_FP32_GEMM = {"auto": 0, "clblast": 1, "tf32x3": 2}


def _pick(table, value, what, function):
    key = value.lower() if isinstance(value, str) else value
    if key not in table:
        names = ", ".join(repr(k) for k in table if k is not None)
        raise _arg_error(function, "unknown %s %r (one of %s)" % (what, value, names))
    return table[key]


# ---------------------------------------------------------------------------------------------------------
# Module-level functions: version, devices, presets, logging
# ---------------------------------------------------------------------------------------------------------

def version():
    """The library's version string ("0.1.0")."""
    return _text(L.load().armt_version_string())


def build_info():
    """ "libarmt 0.1.0 (commit abc1234), CLBlast 1.5.3" """
    return _text(L.load().armt_build_info())


def library_path():
    """The libarmt file this package loaded."""
    return L.load()._armt_path


_DEVICE_FIELDS = [f for f, _ in L.DeviceInfo._fields_]
Device = dataclasses.make_dataclass("Device", _DEVICE_FIELDS, frozen=True)
Device.__doc__ = "One OpenCL device (armt_device_info); bytes fields decoded to str."


def _device(info):
    vals = {}
    for f in _DEVICE_FIELDS:
        v = getattr(info, f)
        vals[f] = _text(v) if isinstance(v, bytes) else v
    vals["is_gpu"] = bool(vals["is_gpu"])
    vals["is_cpu"] = bool(vals["is_cpu"])
    vals["has_fp16"] = bool(vals["has_fp16"])
    vals["has_fp64"] = bool(vals["has_fp64"])
    return Device(**vals)


def devices():
    """Every device of every OpenCL platform (an empty list when there is none)."""
    lib = L.load()
    arr = L.POINTER(L.DeviceInfo)()
    n = c_size_t()
    _check(lib.armt_device_list(byref(arr), byref(n)), "armt_device_list")
    try:
        return [_device(arr[i]) for i in range(n.value)]
    finally:
        lib.armt_device_list_free(arr)


_CONFIG_FIELDS = [f for f, _ in L.Config._fields_]


@dataclasses.dataclass
class Config:
    """armt_config: the LLaMA shapes and the ARMT parameters of a model."""
    hidden_size: int = 0
    n_layers: int = 0
    n_heads: int = 0
    n_kv_heads: int = 0
    head_dim: int = 0
    intermediate_size: int = 0
    vocab_size: int = 0
    rms_norm_eps: float = 0.0
    rope_theta: float = 0.0
    rope_type: int = 0
    rope_factor: float = 0.0
    rope_low_freq_factor: float = 0.0
    rope_high_freq_factor: float = 0.0
    rope_original_max_pos: int = 0
    tie_word_embeddings: int = 0
    num_mem_tokens: int = 0
    d_mem: int = 0
    segment_size: int = 0
    correction: int = 0
    variant: int = 0  # 0 paper, 1 amt (modeling_amt), 2 armt (src/armt.py), 3 inner (inner_loop.py)
    mem_heads: int = 0
    no_denom: int = 0
    gating: int = 0
    use_sink: int = 0
    sliding_window: int = 0
    memory_off: tuple = (0, 0, 0, 0)  # wrap_layers: bit l set = layer l has no memory

    @property
    def d_key(self):
        """2 * nu * d_mem with nu = 3."""
        return L.load().armt_config_d_key(byref(self._c()))

    def _c(self):
        c = L.Config()
        for f in _CONFIG_FIELDS:
            v = getattr(self, f)
            if f == "memory_off":
                v = (L.c_uint64 * 4)(*v)
            setattr(c, f, v)
        return c

    @classmethod
    def _from_c(cls, c):
        return cls(**{f: (tuple(getattr(c, f)) if f == "memory_off" else getattr(c, f)) for f in _CONFIG_FIELDS})


assert [f.name for f in dataclasses.fields(Config)] == _CONFIG_FIELDS


def presets():
    """Names of the built-in configurations ("tiny", "tiny-gqa", "llama-160m", "llama-3.2-1b")."""
    names = L.load().armt_config_preset_names()
    out = []
    i = 0
    while names[i]:
        out.append(_text(names[i]))
        i += 1
    return out


def config_preset(name):
    """The Config of a named preset."""
    c = L.Config()
    _check(L.load().armt_config_preset(name.encode(), byref(c)), "armt_config_preset")
    return Config._from_c(c)


_log_fn = None
_LOG_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


def enable_logging(enable=True):
    """Sends the library's diagnostics (armt_log_set) to the `logging` logger "armt"; False stops it."""
    global _log_fn
    lib = L.load()
    if not enable:
        lib.armt_log_set(L.LOG_FN(), None)
        _log_fn = None
        return
    logger = logging.getLogger("armt")

    def cb(level, message, _user):
        try:
            logger.log(_LOG_LEVELS.get(level, logging.DEBUG), "%s", _text(message))
        except Exception:  # never let an exception cross into C
            pass

    fn = L.LOG_FN(cb)
    lib.armt_log_set(fn, None)
    _log_fn = fn  # kept alive while installed


# ---------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------

def _as_array(x):
    """NumPy view/copy of lists, arrays and objects with __array__ / __array_interface__ / __dlpack__."""
    if isinstance(x, np.ndarray):
        return x
    if any(hasattr(x, p) for p in ("__array__", "__array_interface__", "__array_struct__")):
        try:
            return np.asarray(x)
        except Exception:
            if not hasattr(x, "__dlpack__"):
                raise
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return np.asarray(x)


def _as_ids(ids, function):
    """ids as a C-contiguous int32 vector; a bad id that fits int32 is left for the library to report."""
    try:
        a = _as_array(ids)
    except Exception as e:
        raise _arg_error(function, "ids: cannot be read as an array (%s: %s)" % (type(e).__name__, e)) from e
    if a.dtype == object or (a.ndim > 0 and a.dtype.kind not in "iu" and a.size > 0):
        raise _arg_error(function, "ids must be integers, not %s" % a.dtype)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]  # a batch of one, as HF input_ids
    if a.ndim != 1:
        raise _arg_error(function, "ids must be a 1-D sequence (or one row of shape (1, n)), not shape %s"
                         % (a.shape,))
    if a.size and a.dtype != np.int32:
        lo, hi = int(a.min()), int(a.max())
        if lo < -2**31 or hi >= 2**31:
            bad = lo if lo < -2**31 else hi
            raise _arg_error(function, "token id %d does not fit an int32" % bad, Status.TOKEN_OUT_OF_RANGE)
    return np.ascontiguousarray(a, dtype=np.int32)


def _as_f32(x, count, what, function):
    try:
        a = np.ascontiguousarray(_as_array(x), dtype=np.float32)
    except Exception as e:
        raise _arg_error(function, "%s: cannot be read as a float array (%s)" % (what, e)) from e
    if a.size != count:
        raise _arg_error(function, "%s has %d elements, the context's state %d" % (what, a.size, count))
    return a


class _Callback:
    """Calls a Python function from C: exceptions are kept (and re-raised after the call) instead of
    crossing into C; True from the function asks the library to stop."""

    def __init__(self, fn):
        self.fn = fn
        self.error = None

    def __call__(self, *args):
        if self.error is not None:
            return 1
        try:
            return 1 if self.fn(*args[:-1]) is True else 0
        except BaseException as e:  # noqa: B902 - KeyboardInterrupt too: stop and re-raise after the call
            self.error = e
            return 1

    def reraise(self):
        if self.error is not None:
            e, self.error = self.error, None
            raise e


class tqdm_progress:
    """A progress callback that shows a tqdm bar (needs tqdm): ctx.forward(ids, progress=armt.tqdm_progress())
    or just progress=True. Closed by forward when the call ends."""

    def __init__(self, desc="forward", **tqdm_kwargs):
        try:
            import tqdm
        except ImportError as e:
            raise ImportError("a progress bar needs tqdm (pip install tqdm)") from e
        self._tqdm = tqdm.tqdm
        self._kw = dict(desc=desc, unit="step", **tqdm_kwargs)
        self.bar = None

    def __call__(self, done, total):
        if self.bar is None:
            self.bar = self._tqdm(total=total, **self._kw)
        self.bar.update(done - self.bar.n)
        return None

    def close(self):
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------------------------

def _enc(v):
    """An option string for C: None stays NULL, paths through os.fsencode, ints and str as UTF-8."""
    if v is None:
        return None
    return os.fsencode(v) if isinstance(v, os.PathLike) else str(v).encode("utf-8")


class Runtime(_Handle):
    """armt_runtime: a device, its OpenCL context and the compiled kernels. One per device.

    platform, device: an index (int or str) or a case-insensitive name substring; None: $ARMT_PLATFORM /
    $ARMT_DEVICE, then the best device (GPUs first, then the most memory). tensor_cores: "auto", "off",
    "on" or "emulate". fp32_gemm: the GEMMs of fp32 models, "auto" (3xTF32 on NVIDIA tensor cores where the device
    has them, else CLBlast), "clblast" or "tf32x3" (required; the attention on it too; "auto" puts the attention there where
    it checks at least as accurate as the fp32 kernel when the model loads). Use as a context
    manager, or call close().
    """
    _kind = "runtime"
    _free = "armt_runtime_free"

    def __init__(self, platform=None, device=None, *, kernel_dir=None, profile=False, tensor_cores="auto",
                 fp32_gemm="auto"):
        lib = L.load()
        p = lib.armt_runtime_default_params()
        self._strings = (_enc(platform), _enc(device), _enc(kernel_dir))  # alive during the call
        p.platform, p.device, p.kernel_dir = self._strings
        p.profile = 1 if profile else 0
        p.tensor_cores = _pick(_TENSOR_CORES, tensor_cores, "tensor_cores mode", "Runtime")
        p.fp32_gemm = _pick(_FP32_GEMM, fp32_gemm, "fp32_gemm mode", "Runtime")
        out = c_void_p()
        _check(lib.armt_runtime_create(byref(p), byref(out)), "armt_runtime_create")
        self._own(out.value)

    @property
    def device(self):
        """The Device this runtime runs on."""
        info = L.DeviceInfo()
        ptr = self._ptr
        lib = L.load()
        _check(lib.armt_runtime_device_info(ptr, byref(info)), "armt_runtime_device_info",
               lambda: lib.armt_runtime_last_error(ptr))
        return _device(info)

    def _model_params(self, precision, seed, wmv_std, segment_size=None, num_mem_tokens=None, d_mem=None,
                      correction=None, function="load_model"):
        mp = L.load().armt_model_default_params()
        mp.precision = _pick(_PRECISIONS, precision, "precision", function)
        mp.seed = int(seed)
        mp.wmv_std = float(wmv_std)
        if segment_size is not None:
            mp.segment_size = int(segment_size)
        if num_mem_tokens is not None:
            mp.num_mem_tokens = int(num_mem_tokens)
        if d_mem is not None:
            mp.d_mem = int(d_mem)
        if correction is not None:
            mp.correction = 1 if correction else 0
        return mp

    def load_model(self, path, precision="fp32", *, segment_size=None, num_mem_tokens=None, d_mem=None,
                   correction=None, seed=0, wmv_std=0.0):
        """Loads a checkpoint (directory or .safetensors file; armt_model_load). The keyword arguments
        override (or supply) the ARMT parameters; seed and wmv_std initialise the tensors a plain LLaMA
        checkpoint lacks."""
        mp = self._model_params(precision, seed, wmv_std, segment_size, num_mem_tokens, d_mem, correction)
        out = c_void_p()
        _check(L.load().armt_model_load(self._ptr, os.fsencode(path), byref(mp), byref(out)), "armt_model_load")
        return Model._wrap(out.value, self)

    def random_model(self, preset="tiny", seed=0, *, precision="fp32", wmv_std=0.0, **config):
        """A model with random weights (armt_model_create_random), deterministic for a seed. preset: a
        preset name (armt.presets()) or an armt.Config; keyword arguments set fields of the configuration
        (vocab_size=2004, segment_size=8, ...). wmv_std > 0 makes the memory path active."""
        if isinstance(preset, Config):
            cfg = dataclasses.replace(preset)
        else:
            cfg = config_preset(preset)
        for k, v in config.items():
            if k not in _CONFIG_FIELDS:
                raise TypeError("random_model() got an unexpected keyword argument %r" % k)
            setattr(cfg, k, v)
        c = cfg._c()
        mp = self._model_params(precision, seed, wmv_std, function="random_model")
        out = c_void_p()
        _check(L.load().armt_model_create_random(self._ptr, byref(c), byref(mp), byref(out)),
               "armt_model_create_random")
        return Model._wrap(out.value, self)

    def __repr__(self):
        if self.closed:
            return "<armt.Runtime (closed)>"
        return "<armt.Runtime %s (%s)>" % (self.device.name, self.device.platform_name)


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------

class Model(_Handle):
    """armt_model: weights on the device, read-only, shared by any number of contexts. Made by
    Runtime.load_model or Runtime.random_model; keeps its Runtime alive."""
    _kind = "model"
    _free = "armt_model_free"

    @classmethod
    def _wrap(cls, ptr, runtime):
        m = cls.__new__(cls)
        m.runtime = runtime
        m._own(ptr, runtime)
        m.config = Config._from_c(L.load().armt_model_config(ptr).contents)
        return m

    def _lasterr(self):
        return L.load().armt_model_last_error(self._handle)

    @property
    def precision(self):
        return {0: "fp32", 1: "bf16"}.get(L.load().armt_model_precision(self._ptr), "unknown")

    @property
    def device_bytes(self):
        """Device bytes held by the weights."""
        return int(L.load().armt_model_device_bytes(self._ptr))

    @property
    def fingerprint(self):
        """64-bit fingerprint of the configuration and weights (recorded in saved memory states)."""
        return int(L.load().armt_model_fingerprint(self._ptr))

    def save(self, path):
        """Weights and configuration into one safetensors file (armt_model_save)."""
        _check(L.load().armt_model_save(self._ptr, os.fsencode(path)), "armt_model_save", self._lasterr)

    def context(self, *, profile=None):
        """A new Context (memory state, scratch, a queue) on this model; one per thread."""
        lib = L.load()
        cp = lib.armt_ctx_default_params()
        if profile is not None:
            cp.profile = 1 if profile else -1
        out = c_void_p()
        _check(lib.armt_ctx_create(self._ptr, byref(cp), byref(out)), "armt_ctx_create", self._lasterr)
        return Context._wrap(out.value, self)

    def output_count(self, output, n_tokens):
        """Floats the output needs for n_tokens (armt_output_count)."""
        return int(L.load().armt_output_count(self._ptr, _pick(_OUTPUTS, output, "output", "output_count"),
                                              int(n_tokens)))

    def __repr__(self):
        if self.closed:
            return "<armt.Model (closed)>"
        c = self.config
        return "<armt.Model %d layers, hidden %d, vocab %d, segment %d + %d memory tokens, %s>" % (
            c.n_layers, c.hidden_size, c.vocab_size, c.segment_size, c.num_mem_tokens, self.precision)


# ---------------------------------------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------------------------------------

Memory = namedtuple("Memory", ["w_mem", "z", "written"])
Memory.__doc__ = """The associative memory state of a context: w_mem float32 [n_layers, d_key, hidden],
z float32 [n_layers, d_key], written bool [n_layers] (a layer not written since the last reset treats its
next segment as the first)."""


class Context(_Handle):
    """armt_ctx: the memory state (W_mem, z) that persists across forward calls, scratch and a queue.
    Made by Model.context(); keeps its Model alive. One thread at a time per context."""
    _kind = "context"
    _free = "armt_ctx_free"

    @classmethod
    def _wrap(cls, ptr, model):
        c = cls.__new__(cls)
        c.model = model
        c.last_generation = None
        c._own(ptr, model)
        return c

    def _lasterr(self):
        return L.load().armt_ctx_last_error(self._handle)

    def _call(self, name, *args):
        _check(getattr(L.load(), name)(self._ptr, *args), name, self._lasterr)

    # ---- forward ----
    def forward(self, ids, schedule="diagonal", output="logits", *, out=None, all_rows=False, progress=None):
        """Runs ids through the model (armt_forward) and returns the requested output as a new float32
        array: "logits" [n, vocab], "last" [vocab] (the last token's logits), "hidden" [n, hidden]
        (after the final RMSNorm), or None (nothing copied; returns None).

        ids: a list, NumPy array, or anything with __array__ / __array_interface__ / __dlpack__ (e.g. a
        CPU torch tensor); 1-D, or shape (1, n). ARMT schedules ("diagonal", "sequential") read and write
        the memory state, which persists across calls; "full" runs the base LLaMA and leaves it alone.
        out: a float32 C-contiguous array to write into instead (its size is passed to the library, which
        refuses one too small). progress: callable(done, total) after each step, or True for a tqdm bar;
        returning True asks for cancellation where the library's armt_progress_fn returns int (a library
        whose callback returns void ignores it). An exception in the callback stops asking and is raised
        when the call returns. The GIL is released while the library runs."""
        fn = "forward"
        a = _as_ids(ids, fn)
        n = a.size
        lib = L.load()
        o = _pick(_OUTPUTS, output, "output", fn)
        s = _pick(_SCHEDULES, schedule, "schedule", fn)
        ptr = self._ptr
        count = int(lib.armt_output_count(self.model._ptr, o, n))
        if out is None:
            buf = np.empty(count, dtype=np.float32) if o else None
        else:
            if not (isinstance(out, np.ndarray) and out.dtype == np.float32 and out.flags.c_contiguous
                    and out.flags.writeable):
                raise _arg_error(fn, "out must be a writable C-contiguous float32 numpy array")
            buf = out
        fp = lib.armt_forward_default_params()
        fp.schedule, fp.output, fp.all_rows = s, o, 1 if all_rows else 0
        if buf is not None:
            fp.out = buf.ctypes.data_as(L.POINTER(L.c_float))
            fp.out_count = buf.size
        bar = None
        cb = None
        if progress is True:
            progress = bar = tqdm_progress()
        elif isinstance(progress, tqdm_progress):
            bar = progress
        if progress is not None:
            cb = _Callback(progress)
            fp.progress = L.PROGRESS_FN(cb)
        try:
            st = lib.armt_forward(ptr, a.ctypes.data, n, byref(fp))
        finally:
            if bar is not None:
                bar.close()
        if cb is not None:
            cb.reraise()
        _check(st, "armt_forward", self._lasterr)
        if o == 0:
            return None
        cfg = self.model.config
        shape = {1: (n, cfg.vocab_size), 2: (cfg.vocab_size,), 3: (n, cfg.hidden_size)}[o]
        res = buf.reshape(-1)[:count]
        return res.reshape(shape) if int(np.prod(shape)) == count else res

    __call__ = forward

    # ---- memory state ----
    def _counts(self):
        lib = L.load()
        ptr = self._ptr
        return int(lib.armt_ctx_memory_w_count(ptr)), int(lib.armt_ctx_memory_z_count(ptr))

    @property
    def memory(self):
        """The memory state as an armt.Memory (w_mem, z, written) of new arrays; assign a Memory, or a
        tuple (w_mem, z[, written]) to restore one (written defaults to every layer written)."""
        wc, zc = self._counts()
        cfg = self.model.config
        nl, d = cfg.n_layers, cfg.hidden_size
        w = np.empty(wc, dtype=np.float32)
        z = np.empty(zc, dtype=np.float32)
        written = np.empty(nl, dtype=np.uint8)
        self._call("armt_ctx_memory_get", w.ctypes.data, z.ctypes.data, written.ctypes.data)
        dk = zc // nl
        heads = max(1, int(getattr(cfg, "mem_heads", 1) or 1))
        if heads == 1:
            return Memory(w.reshape(nl, dk, d), z.reshape(nl, dk), written.astype(bool))
        # several memory heads (amt variant): the reference's [layers, H, d_key/H, d/H]
        return Memory(w.reshape(nl, heads, dk // heads, d // heads), z.reshape(nl, heads, dk // heads),
                      written.astype(bool))

    @memory.setter
    def memory(self, state):
        fn = "memory"
        if isinstance(state, dict):
            state = (state["w_mem"], state["z"], state.get("written"))
        if not isinstance(state, (tuple, list)) or len(state) not in (2, 3):
            raise _arg_error(fn, "memory: expected an armt.Memory or a tuple (w_mem, z[, written])")
        wc, zc = self._counts()
        nl = self.model.config.n_layers
        w = _as_f32(state[0], wc, "w_mem", fn)
        z = _as_f32(state[1], zc, "z", fn)
        written = state[2] if len(state) == 3 else None
        if written is None:
            wr = np.ones(nl, dtype=np.uint8)
        else:
            wr = np.ascontiguousarray(_as_array(written)).astype(bool).astype(np.uint8).reshape(-1)
            if wr.size != nl:
                raise _arg_error(fn, "written has %d elements, the model %d layers" % (wr.size, nl))
        self._call("armt_ctx_memory_set", w.ctypes.data, z.ctypes.data, wr.ctypes.data)

    def reset(self):
        """Zeroes the memory state (armt_ctx_reset)."""
        self._call("armt_ctx_reset")

    def save_memory(self, path):
        """Saves the memory state to a file that records the model's fingerprint."""
        self._call("armt_ctx_memory_save", os.fsencode(path))

    def load_memory(self, path):
        """Loads a state saved by save_memory; a state of another model raises Error (MODEL_MISMATCH)
        and leaves the current state unchanged."""
        self._call("armt_ctx_memory_load", os.fsencode(path))

    def stats(self):
        """Counters of the last forward call (armt_ctx_stats) as a dict."""
        s = L.Stats()
        self._call("armt_ctx_stats", byref(s))
        return {f: getattr(s, f) for f, _ in L.Stats._fields_}

    # ---- generation ----
    def generate(self, ids, max_new=32, *, temperature=0.0, top_k=0, top_p=1.0, seed=0, stop_id=None,
                 schedule="diagonal", on_token=None):
        """Reads the prompt ids and returns the new tokens (int32 array) as armt_generate produces them:
        the prompt's earlier segments go through the forward (memory written), the last one is read with
        the memory, then tokens follow one by one. temperature 0 (default) is greedy; top_k, top_p and
        seed shape the sampling. on_token(token) is called for each new token; returning True stops.
        stop_id: stop after that token (included). The GIL is released while the library runs; the
        timing of the call is kept in last_generation (a dict)."""
        fn = "generate"
        a = _as_ids(ids, fn)
        lib = L.load()
        ptr = self._ptr
        gp = lib.armt_generate_default_params()
        gp.schedule = _pick(_SCHEDULES, schedule, "schedule", fn)
        gp.max_new_tokens = int(max_new)
        gp.stop_id = -1 if stop_id is None else int(stop_id)
        gp.temperature = float(temperature)
        gp.top_k = int(top_k)
        gp.top_p = float(top_p)
        gp.seed = int(seed)
        cb = None
        if on_token is not None:
            cb = _Callback(on_token)
            gp.on_token = L.TOKEN_FN(cb)
        out = np.zeros(max(int(max_new), 1), dtype=np.int32)
        res = L.GenerateResult()
        st = lib.armt_generate(ptr, a.ctypes.data, a.size, byref(gp), out.ctypes.data, max(int(max_new), 0),
                               byref(res))
        if cb is not None:
            cb.reraise()
        _check(st, "armt_generate", self._lasterr)
        self.last_generation = {f: getattr(res, f) for f, _ in L.GenerateResult._fields_}
        return out[:res.n_tokens].copy()

    def __repr__(self):
        return "<armt.Context%s on %r>" % (" (closed)" if self.closed else "", self.model)


# ---------------------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------------------

class Tokenizer(_Handle):
    """armt_tokenizer: a byte-level BPE tokenizer read from a HF tokenizer.json (LLaMA-3 family)."""
    _kind = "tokenizer"
    _free = "armt_tokenizer_free"

    def __init__(self, path):
        out = c_void_p()
        _check(L.load().armt_tokenizer_load(os.fsencode(path), byref(out)), "armt_tokenizer_load")
        self._own(out.value)

    def _lasterr(self):
        return L.load().armt_tokenizer_last_error(self._handle)

    @property
    def vocab_size(self):
        """Max id + 1 over the vocabulary and the added tokens."""
        return int(L.load().armt_tokenizer_vocab_size(self._ptr))

    def token_id(self, token):
        """The id of a token's text ("<|eot_id|>"), or None."""
        i = L.load().armt_tokenizer_token_id(self._ptr, token.encode("utf-8"))
        return None if i < 0 else int(i)

    def encode(self, text, add_bos=True, parse_special=True):
        """UTF-8 text (str or bytes) to a list of ids. add_bos prepends the BOS token if the tokenizer
        defines one (as HF's add_special_tokens); parse_special turns special tokens written in the text
        into their ids."""
        b = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        lib = L.load()
        ptr = self._ptr
        cap = len(b) + 8
        while True:
            ids = np.empty(cap, dtype=np.int32)
            n = c_size_t()
            st = lib.armt_tokenizer_encode(ptr, b, len(b), int(bool(add_bos)), int(bool(parse_special)),
                                           ids.ctypes.data, cap, byref(n))
            if st == Status.INVALID_ARGUMENT and n.value > cap:
                cap = n.value
                continue
            _check(st, "armt_tokenizer_encode", self._lasterr)
            return ids[:n.value].tolist()

    def decode(self, ids, skip_special=False):
        """ids to text; special tokens rendered as their text unless skip_special."""
        a = _as_ids(ids, "decode")
        lib = L.load()
        ptr = self._ptr
        cap = 16 * a.size + 16
        while True:
            buf = np.empty(cap, dtype=np.uint8)
            n = c_size_t()
            st = lib.armt_tokenizer_decode(ptr, a.ctypes.data, a.size, int(bool(skip_special)),
                                           buf.ctypes.data, cap, byref(n))
            if st == Status.INVALID_ARGUMENT and n.value > cap:
                cap = n.value
                continue
            _check(st, "armt_tokenizer_decode", self._lasterr)
            return buf[:n.value].tobytes().decode("utf-8", "replace")

    def __len__(self):
        return self.vocab_size
