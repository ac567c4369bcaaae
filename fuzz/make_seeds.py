#!/usr/bin/env python3
"""make_seeds.py - writes the generated part of the fuzzing seed corpora (python stdlib only).

    python3 fuzz/make_seeds.py            # from the repository root; writes fuzz/corpus/{safetensors,config}/gen-*

Files it writes are named gen-*; everything else in fuzz/corpus/ is written by hand (real config.json files)
and left alone. Re-running it reproduces the same bytes.

fuzz/corpus/safetensors/   .safetensors files, valid and broken in one way each, plus sharded checkpoints in
                           the harness's '{' form (see fuzz/fuzz_safetensors.c):
                               INDEX-JSON '\\0' SHARD1 "\\n#SHARD#\\n" SHARD2 ...
                           where the index names the shards model-00001.safetensors, model-00002...
fuzz/corpus/config/        full-form configs (what armt_config_to_json writes), armt_config.json forms and
                           config.json variants broken in one way each.
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ST_DIR = os.path.join(HERE, "corpus", "safetensors")
CFG_DIR = os.path.join(HERE, "corpus", "config")
SHARD_MARK = b"\n#SHARD#\n"

DTYPE = {"F32": ("<f", 4), "F16": ("<e", 2), "BF16": (None, 2)}


def tensor_bytes(dtype, values):
    fmt, size = DTYPE.get(dtype, (None, 2))
    if dtype == "BF16":
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    if fmt is None:  # unsupported dtypes (I64, ...): raw little-endian integers of 8 bytes
        return b"".join(struct.pack("<q", int(v)) for v in values)
    return b"".join(struct.pack(fmt, v) for v in values)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def safetensors(tensors, metadata=None, align=True, raw_header=None, length=None, trailer=b""):
    """tensors: list of (name, dtype, shape, values or None). Offsets are laid out back to back."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = b""
    for name, dtype, shape, values in tensors:
        if values is None:
            values = [float(i % 7) - 3.0 for i in range(numel(shape))]
        b = tensor_bytes(dtype, values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if align and raw_header is None:
        text += b" " * ((-len(text)) % 8)
    n = len(text) if length is None else length
    return struct.pack("<Q", n) + text + data + trailer


def raw(header_obj, data, length=None):
    text = json.dumps(header_obj, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def sharded(index_obj, shards, index_text=None):
    text = index_text if index_text is not None else json.dumps(index_obj).encode()
    if not shards:
        return text
    return text + b"\0" + SHARD_MARK.join(shards)


def st_seeds():
    s = {}
    f32 = lambda n: tensor_bytes("F32", [float(i) for i in range(n)])
    # ---- valid
    s["valid-empty"] = safetensors([])
    s["valid-f32-2x3"] = safetensors([("w", "F32", [2, 3], None)])
    s["valid-f16-bf16-meta"] = safetensors(
        [("a", "F16", [4], [0.5, -2.0, 65504.0, 6e-8]), ("b", "BF16", [2, 2], [1.0, -1.0, 3.5, 1e30])],
        metadata={"format": "pt", "armt_config": '{"version":1}'})
    s["valid-scalar"] = safetensors([("s", "F32", [], [3.25])])
    s["valid-zero-size"] = safetensors([("z", "F32", [0, 5], []), ("w", "F32", [3], None), ("e", "F16", [0], [])])
    s["valid-8-dims"] = safetensors([("d8", "F32", [1, 2, 1, 2, 1, 2, 1, 1], None)])
    s["valid-unaligned-header"] = safetensors([("w", "BF16", [3], None)], align=False)
    s["valid-llama-names"] = safetensors(
        [("model.embed_tokens.weight", "F32", [8, 4], None),
         ("model.layers.0.input_layernorm.weight", "F32", [4], None),
         ("model.layers.0.self_attn.q_proj.weight", "BF16", [4, 4], None),
         ("model.layers.0.self_attn.k_proj.weight", "F16", [2, 4], None),
         ("model.norm.weight", "F32", [4], None),
         ("lm_head.weight", "F32", [8, 4], None)],
        metadata={"format": "pt"})
    # tensors listed in an order different from their data order
    hdr = {"b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
           "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    s["valid-out-of-order"] = raw(hdr, f32(4))
    # ---- invalid: file framing
    s["bad-empty-file"] = b""
    s["bad-7-bytes"] = b"\x02\0\0\0\0\0\0"
    s["bad-header-len-0"] = struct.pack("<Q", 0) + b"{}"
    s["bad-header-len-past-eof"] = safetensors([("w", "F32", [2], None)], length=4096)
    s["bad-header-len-huge"] = struct.pack("<Q", 2**63 + 5) + b"{}"
    s["bad-header-len-over-100mb"] = struct.pack("<Q", 100000001) + b"{}"
    s["bad-header-not-json"] = safetensors([], raw_header=b'{"w": {"dtype": "F32", ')
    s["bad-header-array"] = safetensors([], raw_header=b"[1, 2, 3]")
    s["bad-header-nul"] = safetensors([], raw_header=b'{"a\\u0000b": {}}')
    s["bad-duplicate-key"] = safetensors(
        [], raw_header=b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                       b'"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}') + f32(1)
    # ---- invalid: entries
    def one(entry, data=f32(2)):
        return raw({"w": entry}, data)
    s["bad-entry-not-object"] = one([1, 2])
    s["bad-dtype-missing"] = one({"shape": [2], "data_offsets": [0, 8]})
    s["unsupported-dtype-i64"] = one({"dtype": "I64", "shape": [1], "data_offsets": [0, 8]})
    s["unsupported-dtype-f64"] = one({"dtype": "F64", "shape": [1], "data_offsets": [0, 8]})
    s["bad-shape-negative"] = one({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]})
    s["bad-shape-real"] = one({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]})
    s["bad-shape-9-dims"] = one({"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}, f32(1))
    s["bad-shape-overflow"] = one({"dtype": "F32", "shape": [2**32, 2**32, 2], "data_offsets": [0, 8]})
    s["bad-shape-bytes-overflow"] = one({"dtype": "F32", "shape": [2**62 + 1], "data_offsets": [0, 4]}, f32(1))
    s["bad-shape-not-list"] = one({"dtype": "F32", "shape": 2, "data_offsets": [0, 8]})
    s["bad-offsets-reversed"] = one({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]})
    s["bad-offsets-past-data"] = one({"dtype": "F32", "shape": [2], "data_offsets": [4, 12]})
    s["bad-offsets-span"] = one({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]})
    s["bad-offsets-three"] = one({"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]})
    s["bad-offsets-huge"] = one({"dtype": "F32", "shape": [2], "data_offsets": [2**63 - 8, 2**63 - 1]})
    hdr = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}
    s["bad-hole"] = raw(hdr, f32(5))
    hdr = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    s["bad-overlap"] = raw(hdr, f32(3))
    s["bad-trailing-bytes"] = safetensors([("w", "F32", [2], None)], trailer=b"\0\0\0\0")
    s["bad-data-no-tensors"] = safetensors([], trailer=b"\0" * 8)
    s["bad-metadata-not-object"] = raw({"__metadata__": "pt"}, b"")
    s["bad-metadata-value"] = raw({"__metadata__": {"format": 1}}, b"")

    # ---- sharded checkpoints ('{' form)
    sh1 = safetensors([("model.embed_tokens.weight", "F32", [4, 2], None), ("model.norm.weight", "F16", [2], None)])
    sh2 = safetensors([("lm_head.weight", "BF16", [4, 2], None)], metadata={"format": "pt"})
    wm = {"model.embed_tokens.weight": "model-00001.safetensors", "model.norm.weight": "model-00001.safetensors",
          "lm_head.weight": "model-00002.safetensors"}
    s["shard-valid-2"] = sharded({"metadata": {"total_size": 44}, "weight_map": wm}, [sh1, sh2])
    s["shard-valid-2-odd"] = sharded({"metadata": {"total_size": 44}, "weight_map": wm, "x": 1}, [sh1, sh2])
    s["shard-valid-1"] = sharded({"weight_map": {"w": "model-00001.safetensors"}},
                                 [safetensors([("w", "F32", [3], None)])])
    s["shard-valid-extra-tensor"] = sharded({"weight_map": {"lm_head.weight": "model-00002.safetensors"}},
                                            [sh1, sh2])
    sh3 = safetensors([("c", "F32", [1], None)])
    sh4 = safetensors([("d", "F32", [], None)])
    s["shard-valid-4"] = sharded({"weight_map": dict(wm, c="model-00003.safetensors",
                                                     d="model-00004.safetensors")}, [sh1, sh2, sh3, sh4])
    s["shard-bad-missing-file"] = sharded({"weight_map": dict(wm, x="model-00003.safetensors")}, [sh1, sh2])
    s["shard-bad-wrong-shard"] = sharded({"weight_map": dict(wm, **{"lm_head.weight": "model-00001.safetensors",
                                                                    "model.norm.weight": "model-00002.safetensors"})},
                                         [sh1, sh2])
    s["shard-bad-absent-tensor"] = sharded({"weight_map": dict(wm, ghost="model-00002.safetensors")}, [sh1, sh2])
    s["shard-bad-duplicate-tensor"] = sharded({"weight_map": {"w": "model-00001.safetensors",
                                                              "v": "model-00002.safetensors"}},
                                              [safetensors([("w", "F32", [1], None)]),
                                               safetensors([("w", "F32", [1], None), ("v", "F32", [1], None)])])
    s["shard-bad-empty-map"] = sharded({"weight_map": {}}, [sh1])
    s["shard-bad-no-map"] = sharded({"metadata": {}}, [sh1])
    s["shard-bad-name-not-string"] = sharded({"weight_map": {"w": 1}}, [sh1])
    s["shard-bad-name-empty"] = sharded({"weight_map": {"w": ""}}, [sh1])
    s["shard-bad-index-json"] = sharded(None, [sh1], index_text=b'{"weight_map": {"w": "model-00001.safe')
    s["shard-bad-index-dupkey"] = sharded(None, [sh1], index_text=b'{"weight_map": {}, "weight_map": {}}')
    s["shard-bad-index-only"] = sharded({"weight_map": {"w": "model-00001.safetensors"}}, [])
    s["shard-bad-shard-broken"] = sharded({"weight_map": {"w": "model-00001.safetensors"}},
                                          [safetensors([("w", "F32", [2], None)], length=4096)])
    s["shard-dir-name"] = sharded({"weight_map": {"w": "."}}, [sh1])
    return s


def cfg_seeds():
    s = {}
    full = {"version": 1, "hidden_size": 64, "n_layers": 3, "n_heads": 4, "n_kv_heads": 2, "head_dim": 16,
            "intermediate_size": 128, "vocab_size": 256, "rms_norm_eps": 9.9999997473787516e-06,
            "rope_theta": 500000.0, "rope_type": "llama3", "rope_factor": 32.0, "rope_low_freq_factor": 1.0,
            "rope_high_freq_factor": 4.0, "rope_original_max_pos": 8192, "tie_word_embeddings": 1,
            "num_mem_tokens": 4, "d_mem": 8, "segment_size": 16, "correction": 1}
    dumps = lambda o: json.dumps(o, separators=(",", ":")).encode()
    s["full-tiny"] = dumps(full)
    s["full-default-rope"] = dumps(dict(full, rope_type="default", rope_factor=1.0, rope_low_freq_factor=0.0,
                                        rope_high_freq_factor=0.0, rope_original_max_pos=0))
    s["full-bad-version"] = dumps(dict(full, version=2))
    s["full-bad-rope-type"] = dumps(dict(full, rope_type="yarn"))
    f = dict(full)
    del f["d_mem"]
    s["full-bad-missing-field"] = dumps(f)
    s["full-bad-real-int"] = dumps(dict(full, hidden_size=64.0))
    s["full-bad-check"] = dumps(dict(full, n_kv_heads=3, head_dim=15, rms_norm_eps=0.0))
    s["full-huge-values"] = dumps(dict(full, hidden_size=2147483647, n_heads=2147483647, rope_theta=1e308,
                                       rms_norm_eps=1e300, d_mem=2147483647, segment_size=2147483647))
    s["full-bad-int-range"] = dumps(dict(full, vocab_size=2147483648, n_layers=-2147483649))
    s["armt-correction-int"] = dumps({"num_mem_tokens": 16, "d_mem": 32, "segment_size": 512, "correction": 0})
    s["armt-bad-correction"] = dumps({"correction": 2})
    s["armt-bad-type"] = dumps({"num_mem_tokens": "16"})
    s["armt-empty"] = b"{}"
    base = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 96,
            "vocab_size": 128}
    s["hf-minimal"] = dumps(base)
    s["hf-bad-act"] = dumps(dict(base, hidden_act="gelu"))
    s["hf-bad-attention-bias"] = dumps(dict(base, attention_bias=True))
    s["hf-bad-mlp-bias"] = dumps(dict(base, mlp_bias=1))
    s["hf-bad-missing-vocab"] = dumps({k: v for k, v in base.items() if k != "vocab_size"})
    s["hf-bad-head-divide"] = dumps(dict(base, hidden_size=65))
    s["hf-bad-zero-heads"] = dumps(dict(base, num_attention_heads=0))
    s["hf-bad-rope-yarn"] = dumps(dict(base, rope_scaling={"rope_type": "yarn", "factor": 4.0}))
    s["hf-bad-rope-llama3-missing"] = dumps(dict(base, rope_scaling={"rope_type": "llama3", "factor": 8.0}))
    s["hf-bad-rope-not-object"] = dumps(dict(base, rope_parameters=[1, 2]))
    s["hf-bad-rope-theta-string"] = dumps(dict(base, rope_theta="10000"))
    s["hf-rope-params-default"] = dumps(dict(base, rope_theta=1.0, rope_parameters={"rope_type": "default",
                                                                                     "rope_theta": 10000}))
    s["hf-rope-linear-unsupported"] = dumps(dict(base, rope_scaling={"type": "linear", "factor": 2.0}))
    s["hf-bad-eps-negative"] = dumps(dict(base, rms_norm_eps=-1e-5))
    s["hf-huge-eps"] = dumps(dict(base, rms_norm_eps=1e300, rope_theta=-0.0))
    s["hf-bad-dupkey"] = b'{"hidden_size": 64, "hidden_size": 65}'
    s["hf-bad-truncated"] = b'{"hidden_size": 64, "num_hidden_layers": '
    s["hf-bad-not-object"] = b"[64, 2, 4]"
    s["hf-bad-utf8"] = b'{"hidden_act": "\xff\xfe"}'
    s["hf-bad-empty"] = b""
    s["hf-bad-nul"] = b'{"hidden_size": 64}\0{"x": 1}'
    return s


def write_all(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith("gen-"):
            os.remove(os.path.join(directory, name))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(directory, "gen-" + name), "wb") as f:
            f.write(data)
    return len(seeds)


def main():
    n1 = write_all(ST_DIR, st_seeds())
    n2 = write_all(CFG_DIR, cfg_seeds())
    print(f"wrote {n1} safetensors seeds to {ST_DIR}, {n2} config seeds to {CFG_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
