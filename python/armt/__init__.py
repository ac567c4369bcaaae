"""armt: Python bindings of libarmt (Associative Recurrent Memory Transformers on OpenCL).

    import armt
    with armt.Runtime() as rt:
        model = rt.random_model("tiny", seed=1, wmv_std=0.02)
        ctx = model.context()
        logits = ctx.forward([1, 2, 3, 4], output="logits")   # numpy float32 [4, vocab]

The library is found through $ARMT_LIBRARY, then pkg-config (armt.pc), then the dynamic loader; it is
loaded on first use. Calls go through ctypes (no compiler needed) and release the GIL while the library
runs. Every failure raises armt.Error with the library's status and message.
"""

from ._core import (Config, Context, Device, Error, Memory, Model, Runtime, Status, Tokenizer, build_info,
                    config_preset, devices, enable_logging, library_path, live_handles, presets, tqdm_progress,
                    version)
from ._lib import LibraryNotFound

__version__ = "0.2.0"

__all__ = ["Config", "Context", "Device", "Error", "LibraryNotFound", "Memory", "Model", "Runtime", "Status",
           "Tokenizer", "build_info", "config_preset", "devices", "enable_logging", "library_path",
           "live_handles", "presets", "tqdm_progress", "version"]
