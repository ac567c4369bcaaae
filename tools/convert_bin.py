#!/usr/bin/env python3
"""Convert PyTorch ``.bin`` checkpoints to safetensors, offline, for libarmt (``armt-run --model DIR``).

libarmt reads safetensors only: a ``.bin`` file is a Python pickle, which C cannot read safely. This tool
turns one into the other, keeping every tensor name and dtype:

  * ``pytorch_model.bin``                       -> ``model.safetensors``
  * ``pytorch_model-0000X-of-0000Y.bin`` + ``pytorch_model.bin.index.json``
                                                -> ``model-0000X-of-0000Y.safetensors`` + ``model.safetensors.index.json``
    (one output shard per input shard, the same tensors in each; the index maps every tensor to its file)
  * ``adapter_model.bin`` (PEFT)                -> ``adapter_model.safetensors``; any other ``NAME.bin`` -> ``NAME.safetensors``

F32, F16 and BF16 tensors are written unchanged, bit for bit. Tensors of any other dtype (float64, integer
buffers, bool) are converted to F32 with a warning, because libarmt reads only F32, F16 and BF16. Non-tensor
entries of the pickle are skipped with a warning. Tensors that share storage (tied embeddings) are each
written under their own name. Files are written as ``NAME.tmp`` and renamed when complete.
``__metadata__`` holds ``{"format": "pt"}`` (what transformers expects) and ``converted_from``.

The small JSON files a loader needs are copied next to the output when the output directory differs from
the input's: ``config.json``, ``armt_config.json``, ``adapter_config.json`` and, when present,
``generation_config.json``, ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``.

torch is needed to read ``.bin`` files (``torch.load(..., weights_only=True)``: tensors and plain containers
only, never arbitrary pickled code; torch >= 1.13). It is imported only when a conversion runs, so ``--help``
works without it; without torch the tool says so and exits 3. Nothing else is required (the safetensors
writer is in this file; numpy is not used). Big checkpoints are loaded one shard at a time, memory-mapped
when the file allows it.

Usage:
    tools/convert_bin.py CHECKPOINT [-o OUT_DIR] [--force] [--verify]
        CHECKPOINT: a directory (holding pytorch_model.bin, pytorch_model.bin.index.json or adapter_model.bin),
        a .bin file, or a *.bin.index.json index. OUT_DIR defaults to the checkpoint's directory.
    tools/convert_bin.py --self-test [FIXTURE.safetensors]

Examples:
    tools/convert_bin.py ~/models/llama-160m                 # writes model.safetensors next to the .bin
    tools/convert_bin.py ckpt/pytorch_model.bin.index.json -o ckpt-st --verify
    armt-run --model ckpt-st --segment 1024 --mem 16 --random-ids 4096

Exit status: 0 converted (and verified, with --verify); 1 the conversion or the verification failed
(unreadable or malformed input, missing shard, output exists without --force, write error, a mismatch);
2 usage error; 3 torch is not installed.

How this was tested (``--self-test``, run with torch 2.15 on CPU; no binary fixtures are committed): the
tensors of ``tests/data/hf_llama/model.safetensors`` (a transformers LlamaForCausalLM, F32) are read with this
file's own safetensors reader, and a state dict is made of them plus an F16 and a BF16 copy of one weight, a
float64 and an int64 tensor, a 0-dim tensor, a tied alias sharing the embedding's storage, a transposed
(non-contiguous) view and a row slice. It is saved with ``torch.save`` (1) as one ``pytorch_model.bin``,
(2) as two shards ``pytorch_model-0000{1,2}-of-00002.bin`` with a ``pytorch_model.bin.index.json``, and (3) as
one file in torch's legacy (non-zip) format, which cannot be memory-mapped. Each is converted, with a
``config.json`` and an ``armt_config.json`` beside it, and the result is checked: the same tensor names, the
dtypes kept (F32/F16/BF16) or F32 for float64/int64 (with a warning), the same shapes, the bytes of every
tensor identical to those of the (contiguous) source tensor, or to its ``.float()`` conversion; the index's
``weight_map`` and ``total_size``; the JSON files copied; an existing output refused without ``--force``. When
the ``safetensors`` package is installed, every output file is also loaded with ``safetensors.torch.load_file``
and compared with ``torch.equal``. The converted hf_llama directory was then loaded by
``armt-run --model OUT --segment 12 --mem 4 --random-ids 30``.
"""

import argparse
import ctypes
import json
import os
import shutil
import struct
import sys
import tempfile

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_TORCH = 0, 1, 2, 3

SIDE_FILES = ("config.json", "armt_config.json", "adapter_config.json", "generation_config.json",
              "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

PROG = "convert_bin"


class ConvertError(Exception):
    """A conversion failure with a message for the user (exit 1)."""


def warn(msg):
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


def info(msg, quiet=False):
    if not quiet:
        print(f"{PROG}: {msg}", file=sys.stderr)


def import_torch():
    """torch, or exit 3 with a clear message."""
    try:
        import torch  # noqa: PLC0415 - optional dependency, imported on use only
    except ImportError:
        print(f"{PROG}: error: PyTorch is needed to read .bin checkpoints (they are Python pickles, read with "
              "torch.load(weights_only=True)).\n"
              f"{PROG}: install it, e.g.  pip install torch --index-url https://download.pytorch.org/whl/cpu\n"
              f"{PROG}: (checkpoints that are already .safetensors need no conversion: libarmt reads them "
              "directly)", file=sys.stderr)
        sys.exit(EXIT_NO_TORCH)
    return torch


# ---------------------------------------------------------------------------------------------------------
# safetensors: writer and a small reader (for --verify and the self-test)
# ---------------------------------------------------------------------------------------------------------

def st_dtype_of(torch, dtype):
    """safetensors dtype name for the dtypes written unchanged, else None."""
    return {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}.get(dtype)


def tensor_bytes(t, chunk=1 << 26):
    """Yields the raw bytes of a contiguous CPU tensor in chunks (native order = little-endian here)."""
    nbytes = t.numel() * t.element_size()
    ptr = t.data_ptr()
    for off in range(0, nbytes, chunk):
        yield ctypes.string_at(ptr + off, min(chunk, nbytes - off))


def prepare(torch, name, value, source):
    """The tensor as it will be written (contiguous, CPU, F32/F16/BF16), or None to skip the entry."""
    if not isinstance(value, torch.Tensor):
        warn(f"{source}: '{name}' is a {type(value).__name__}, not a tensor: skipped")
        return None
    t = value.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.is_sparse or t.layout != torch.strided:
        raise ConvertError(f"{source}: tensor '{name}' has layout {t.layout}; only dense tensors are supported")
    if t.is_complex():
        raise ConvertError(f"{source}: tensor '{name}' is complex ({t.dtype}); it has no F32 form")
    if st_dtype_of(torch, t.dtype) is None:
        warn(f"{source}: tensor '{name}' is {str(t.dtype).replace('torch.', '')}: converted to F32 "
             "(libarmt reads F32, F16 and BF16)")
        t = t.to(torch.float32)
    return t.contiguous()


def write_safetensors(torch, path, tensors, metadata):
    """tensors: list of (name, contiguous tensor). Writes path.tmp, then renames it to path."""
    header = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, t in tensors:
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": st_dtype_of(torch, t.dtype), "shape": list(t.shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # 8-byte aligned data, as the reference writer does
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for _, t in tensors:
                for piece in tensor_bytes(t):
                    f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise ConvertError(f"{path}: write failed: {e}") from e
    return offset


def read_safetensors_header(path):
    """(header dict, data start offset). Checks the lengths against the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ConvertError(f"{path}: shorter than 8 bytes")
        (n,) = struct.unpack("<Q", head)
        if n == 0 or n > size - 8 or n > 100_000_000:
            raise ConvertError(f"{path}: bad header length {n}")
        header = json.loads(f.read(n).decode("utf-8"))
    if not isinstance(header, dict):
        raise ConvertError(f"{path}: the header is not a JSON object")
    return header, 8 + n


def read_safetensors_raw(path):
    """{name: (dtype name, shape list, raw bytes)} of every tensor of a file (small files: tests)."""
    header, start = read_safetensors_header(path)
    out = {}
    with open(path, "rb") as f:
        for name, e in header.items():
            if name == "__metadata__":
                continue
            a, b = e["data_offsets"]
            f.seek(start + a)
            out[name] = (e["dtype"], list(e["shape"]), f.read(b - a))
    return out


def raw_to_tensor(torch, dtype, shape, raw):
    dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype]
    if not raw:
        return torch.empty(shape, dtype=dt)
    return torch.frombuffer(bytearray(raw), dtype=dt).reshape(shape).clone()


# ---------------------------------------------------------------------------------------------------------
# Input discovery and conversion
# ---------------------------------------------------------------------------------------------------------

def output_name(bin_name):
    """pytorch_model[-0000X-of-0000Y].bin -> model[...].safetensors; NAME.bin -> NAME.safetensors."""
    stem = bin_name[:-4] if bin_name.endswith(".bin") else bin_name
    if stem.startswith("pytorch_model"):
        stem = "model" + stem[len("pytorch_model"):]
    return stem + ".safetensors"


def find_input(path):
    """(directory, [shard .bin names], index dict or None)."""
    if os.path.isdir(path):
        for cand in ("pytorch_model.bin.index.json", "pytorch_model.bin", "adapter_model.bin"):
            if os.path.isfile(os.path.join(path, cand)):
                return find_input(os.path.join(path, cand))
        bins = sorted(f for f in os.listdir(path) if f.endswith(".bin"))
        indexes = sorted(f for f in os.listdir(path) if f.endswith(".bin.index.json"))
        if len(indexes) == 1:
            return find_input(os.path.join(path, indexes[0]))
        if len(bins) == 1:
            return find_input(os.path.join(path, bins[0]))
        raise ConvertError(f"{path}: no pytorch_model.bin, pytorch_model.bin.index.json or adapter_model.bin "
                           f"(found {len(bins)} .bin files: give one, or the index)")
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file or directory")
    directory = os.path.dirname(os.path.abspath(path))
    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as f:
                index = json.load(f)
        except (OSError, ValueError) as e:
            raise ConvertError(f"{path}: cannot read the index: {e}") from e
        wm = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(wm, dict) or not wm:
            raise ConvertError(f"{path}: the index has no non-empty \"weight_map\" object")
        shards = []
        for name, shard in wm.items():
            if not isinstance(shard, str) or "/" in shard or "\\" in shard or shard in ("", ".", ".."):
                raise ConvertError(f"{path}: weight_map entry of '{name}' is not a file name in the directory")
            if shard not in shards:
                shards.append(shard)
        for shard in shards:
            if not os.path.isfile(os.path.join(directory, shard)):
                raise ConvertError(f"{path}: shard '{shard}' is missing from {directory}")
        return directory, sorted(shards), index
    return directory, [os.path.basename(path)], None


def torch_load(torch, path):
    """The state dict of one .bin file, with weights_only=True (memory-mapped when possible)."""
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except TypeError as e:
            if "weights_only" in str(e):
                raise ConvertError(f"torch {torch.__version__} has no torch.load(weights_only=True): "
                                   "torch >= 1.13 is needed to load .bin files safely") from e
            obj = torch.load(path, map_location="cpu", weights_only=True)  # no mmap parameter (torch < 2.1)
        except RuntimeError as e:
            if "mmap" not in str(e) and "zipfile" not in str(e):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy format: not mappable
    except ConvertError:
        raise
    except Exception as e:  # noqa: BLE001 - torch raises many kinds; all mean "cannot read this file"
        raise ConvertError(f"{path}: torch.load(weights_only=True) failed: {type(e).__name__}: {e}") from e
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model", "module"):
            if isinstance(obj.get(key), dict):
                warn(f"{path}: using the nested '{key}' dictionary")
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    return obj


def convert(args):
    torch = import_torch()
    if sys.byteorder != "little":
        raise ConvertError("this host is big-endian; safetensors data is little-endian (not supported here)")
    directory, shards, index = find_input(args.checkpoint)
    out_dir = os.path.abspath(args.out or directory)
    os.makedirs(out_dir, exist_ok=True)
    sharded = index is not None
    out_names = [output_name(s) for s in shards]
    if len(set(out_names)) != len(out_names):
        raise ConvertError("two input shards map to the same output name")
    planned = out_names + (["model.safetensors.index.json"] if sharded else [])
    if not args.force:
        existing = [n for n in planned if os.path.exists(os.path.join(out_dir, n))]
        if existing:
            raise ConvertError(f"{out_dir}: {', '.join(existing)} already exist(s); use --force to overwrite")

    weight_map, total = {}, 0
    expected = dict(index["weight_map"]) if sharded else None
    for shard, out_name in zip(shards, out_names):
        src = os.path.join(directory, shard)
        info(f"reading {src}", args.quiet)
        sd = torch_load(torch, src)
        tensors = []
        for name, value in sd.items():
            if not isinstance(name, str):
                warn(f"{src}: key {name!r} is not a string: skipped")
                continue
            t = prepare(torch, name, value, src)
            if t is None:
                continue
            if sharded:
                if name not in expected:
                    warn(f"{src}: tensor '{name}' is not in the index; written to {out_name} anyway")
                elif expected[name] != shard:
                    raise ConvertError(f"{src}: tensor '{name}' is listed in the index under '{expected[name]}'")
            if name in weight_map:
                raise ConvertError(f"tensor '{name}' appears in two shards")
            tensors.append((name, t))
            weight_map[name] = out_name
        if not tensors:
            raise ConvertError(f"{src}: no tensors")
        dst = os.path.join(out_dir, out_name)
        meta = {"format": "pt", "converted_from": shard}
        total += write_safetensors(torch, dst, tensors, meta)
        info(f"wrote {dst}: {len(tensors)} tensors", args.quiet)
        if args.verify:
            verify_file(torch, dst, tensors)
        del sd, tensors
    if sharded:
        missing = sorted(set(expected) - set(weight_map))
        if missing:
            raise ConvertError(f"tensors listed in the index but absent from their shards: {', '.join(missing[:5])}"
                               + (" ..." if len(missing) > 5 else ""))
        meta = dict(index.get("metadata") or {})
        meta["total_size"] = total
        idx_path = os.path.join(out_dir, "model.safetensors.index.json")
        tmp = idx_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"metadata": meta, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
            f.write("\n")
        os.replace(tmp, idx_path)
        info(f"wrote {idx_path}", args.quiet)
    if os.path.abspath(directory) != out_dir:
        for side in SIDE_FILES:
            src = os.path.join(directory, side)
            if os.path.isfile(src):
                shutil.copyfile(src, os.path.join(out_dir, side))
                info(f"copied {side}", args.quiet)
    info(f"done: {len(weight_map)} tensors, {total} bytes of data in {out_dir}", args.quiet)
    return weight_map


def verify_file(torch, path, tensors):
    """Re-reads a written file and compares every tensor's bytes with the source (bit-exact)."""
    got = read_safetensors_raw(path)
    if set(got) != {n for n, _ in tensors}:
        raise ConvertError(f"verify {path}: the tensor names differ from the source")
    for name, t in tensors:
        dtype, shape, raw = got[name]
        if dtype != st_dtype_of(torch, t.dtype) or shape != list(t.shape) or raw != b"".join(tensor_bytes(t)):
            raise ConvertError(f"verify {path}: tensor '{name}' differs from the source")


# ---------------------------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------------------------

def self_test(fixture, quiet):
    torch = import_torch()
    if not os.path.isfile(fixture):
        raise ConvertError(f"self-test: fixture {fixture} not found (give its path)")
    base = {n: raw_to_tensor(torch, d, s, r) for n, (d, s, r) in read_safetensors_raw(fixture).items()}
    names = sorted(base)
    emb = next(n for n in names if "embed_tokens" in n)
    w = next(n for n in names if n.endswith("q_proj.weight"))
    sd = dict(base)
    sd["extra.f16"] = base[w].to(torch.float16)
    sd["extra.bf16"] = base[w].to(torch.bfloat16)
    sd["extra.f64"] = base[w].to(torch.float64) / 3
    sd["extra.i64"] = torch.arange(-5, 7, dtype=torch.int64).reshape(3, 4)
    sd["extra.scalar"] = torch.tensor(1.5)
    sd["extra.tied"] = sd[emb]                 # shares the embedding's storage
    sd["extra.transposed"] = base[w].t()       # non-contiguous view
    sd["extra.rows"] = base[emb][3:7]          # a view with a storage offset
    converted = {"extra.f64", "extra.i64"}
    failures = []

    def check(out_dir, label, files):
        got = {}
        for fname in files:
            for n, v in read_safetensors_raw(os.path.join(out_dir, fname)).items():
                got[n] = v
        if set(got) != set(sd):
            failures.append(f"{label}: names differ: {sorted(set(got) ^ set(sd))}")
            return
        for n, t in sd.items():
            ref = (t.to(torch.float32) if n in converted else t).contiguous()
            dtype, shape, raw = got[n]
            if dtype != st_dtype_of(torch, ref.dtype) or shape != list(ref.shape):
                failures.append(f"{label}: {n}: {dtype} {shape} vs {ref.dtype} {list(ref.shape)}")
            elif raw != b"".join(tensor_bytes(ref)):
                failures.append(f"{label}: {n}: bytes differ")
        try:
            from safetensors.torch import load_file  # noqa: PLC0415 - optional cross-check
        except ImportError:
            info(f"{label}: safetensors package not installed: cross-check skipped", quiet)
        else:
            loaded = {}
            for fname in files:
                loaded.update(load_file(os.path.join(out_dir, fname)))
            for n, t in sd.items():
                ref = (t.to(torch.float32) if n in converted else t).contiguous()
                if not torch.equal(loaded[n], ref) or loaded[n].dtype != ref.dtype:
                    failures.append(f"{label}: safetensors.load_file: {n} differs")
        for side in ("config.json", "armt_config.json"):
            if not os.path.isfile(os.path.join(out_dir, side)):
                failures.append(f"{label}: {side} not copied")
        info(f"{label}: {len(got)} tensors checked", quiet)

    with tempfile.TemporaryDirectory(prefix="convert_bin_test_") as tmp:
        def make_dir(name):
            d = os.path.join(tmp, name)
            os.makedirs(d)
            with open(os.path.join(d, "config.json"), "w", encoding="utf-8") as f:
                f.write('{"model_type": "llama"}\n')
            with open(os.path.join(d, "armt_config.json"), "w", encoding="utf-8") as f:
                f.write('{"segment_size": 12, "num_mem_tokens": 4, "d_mem": 8}\n')
            return d

        def run(argv):
            ns = parse_args(argv)
            ns.quiet = True
            convert(ns)

        # 1. one file
        d = make_dir("single")
        torch.save(sd, os.path.join(d, "pytorch_model.bin"))
        run([d, "-o", os.path.join(tmp, "single-out"), "--verify"])
        check(os.path.join(tmp, "single-out"), "single file", ["model.safetensors"])
        # an existing output is refused without --force, accepted with it
        try:
            run([d, "-o", os.path.join(tmp, "single-out")])
            failures.append("existing output was overwritten without --force")
        except ConvertError:
            pass
        run([d, "-o", os.path.join(tmp, "single-out"), "--force"])

        # 2. two shards and an index
        d = make_dir("sharded")
        keys = list(sd)
        parts = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
        wm = {}
        for i, part in enumerate(parts):
            fname = f"pytorch_model-{i + 1:05d}-of-00002.bin"
            torch.save({k: sd[k] for k in part}, os.path.join(d, fname))
            wm.update({k: fname for k in part})
        with open(os.path.join(d, "pytorch_model.bin.index.json"), "w", encoding="utf-8") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f)
        out = os.path.join(tmp, "sharded-out")
        run([d, "-o", out, "--verify"])
        files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        check(out, "sharded", files)
        with open(os.path.join(out, "model.safetensors.index.json"), encoding="utf-8") as f:
            idx = json.load(f)
        exp_wm = {k: v.replace("pytorch_model", "model").replace(".bin", ".safetensors") for k, v in wm.items()}
        if idx["weight_map"] != exp_wm:
            failures.append("sharded: index weight_map is wrong")
        size = sum(os.path.getsize(os.path.join(out, fn)) - read_safetensors_header(os.path.join(out, fn))[1]
                   for fn in files)
        if idx["metadata"].get("total_size") != size:
            failures.append(f"sharded: total_size {idx['metadata'].get('total_size')} != {size}")

        # 3. torch's legacy (non-zip) format: not memory-mappable
        d = make_dir("legacy")
        torch.save(sd, os.path.join(d, "pytorch_model.bin"), _use_new_zipfile_serialization=False)
        run([os.path.join(d, "pytorch_model.bin"), "-o", os.path.join(tmp, "legacy-out")])
        check(os.path.join(tmp, "legacy-out"), "legacy format", ["model.safetensors"])

    if failures:
        for f in failures:
            print(f"{PROG}: self-test FAILED: {f}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{PROG}: self-test passed ({len(sd)} tensors; single file, 2 shards + index, legacy format; "
          "bit-exact)")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="convert_bin.py",
        description="Convert PyTorch .bin checkpoints (one file, or shards + pytorch_model.bin.index.json) to "
                    "safetensors for libarmt, keeping tensor names and F32/F16/BF16 dtypes (other dtypes become "
                    "F32, with a warning). Needs torch (torch.load with weights_only=True).",
        epilog="examples:\n"
               "  convert_bin.py ~/models/llama-160m\n"
               "  convert_bin.py ckpt/pytorch_model.bin.index.json -o ckpt-st --verify\n"
               "  convert_bin.py --self-test\n\n"
               "exit status: 0 ok, 1 conversion or verification failed, 2 usage error, 3 torch not installed",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?",
                   help="a directory with pytorch_model.bin / pytorch_model.bin.index.json / adapter_model.bin, "
                        "a .bin file, or a *.bin.index.json")
    p.add_argument("-o", "--out", metavar="DIR",
                   help="output directory (default: the checkpoint's directory); config.json, "
                        "armt_config.json, adapter_config.json (and tokenizer/generation configs) are copied there")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--verify", action="store_true",
                   help="re-read every written file and compare each tensor bit for bit with the source")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    p.add_argument("--self-test", nargs="?", const="", metavar="FIXTURE",
                   help="build .bin files from a safetensors fixture (default tests/data/hf_llama/"
                        "model.safetensors), convert them and compare bit-exactly; see the module docstring")
    args = p.parse_args(argv)
    if args.self_test is None and not args.checkpoint:
        p.error("give a CHECKPOINT (or --self-test)")
    if args.self_test is not None and args.checkpoint:
        p.error("--self-test takes no CHECKPOINT")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.self_test is not None:
            fixture = args.self_test or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                     "data", "hf_llama", "model.safetensors")
            return self_test(fixture, args.quiet)
        convert(args)
        return EXIT_OK
    except ConvertError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
