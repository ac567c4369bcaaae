#!/usr/bin/env python3
"""Seed corpora of fuzz_tokenizer, fuzz_state, fuzz_ckpt_config and fuzz_ids (python stdlib only).

Run from the repository root: python3 fuzz/make_seeds_more.py. Rewrites only the gen-* files of
fuzz/corpus/{tokenizer,state,ckpt_config,ids}/.
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def out(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, "gen-" + name), "wb") as f:
        f.write(data)


def clean(harness):
    d = os.path.join(ROOT, harness)
    if os.path.isdir(d):
        for n in os.listdir(d):
            if n.startswith("gen-"):
                os.remove(os.path.join(d, n))


# ---- tokenizer.json ----------------------------------------------------------------------------------
def byte_chars():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


REGEX = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
         "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


def tokenizer(merges=(("h", "e"), ("l", "l"), ("he", "ll"), ("Ġ", "w")), added=True, pre="seq", post=True,
              decoder=True, merge_form="str", vocab_extra=True, model_type="BPE"):
    bc = byte_chars()
    vocab = {bc[b]: b for b in range(256)}
    if vocab_extra:
        for a, b in merges:
            if a + b not in vocab:
                vocab[a + b] = len(vocab)
    t = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None}
    if added:
        t["added_tokens"] = [
            {"id": len(vocab), "content": "<|begin_of_text|>", "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True},
            {"id": len(vocab) + 1, "content": "<|eot_id|>", "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True},
        ]
    split = {"type": "Split", "pattern": {"Regex": REGEX}, "behavior": "Isolated", "invert": False}
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    if pre == "seq":
        t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split, bl]}
    elif pre == "bytelevel":
        t["pre_tokenizer"] = dict(bl, use_regex=True)
    else:
        t["pre_tokenizer"] = None
    if post:
        t["post_processor"] = {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                          {"Sequence": {"id": "A", "type_id": 0}}],
                               "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                                                        "ids": [len(vocab)],
                                                                        "tokens": ["<|begin_of_text|>"]}}}
    else:
        t["post_processor"] = None
    t["decoder"] = ({"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
                    if decoder else None)
    ms = [a + " " + b for a, b in merges] if merge_form == "str" else [[a, b] for a, b in merges]
    t["model"] = {"type": model_type, "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": True, "vocab": vocab, "merges": ms}
    return json.dumps(t, ensure_ascii=False, separators=(",", ":"))


def gen_tokenizer():
    clean("tokenizer")
    out("tokenizer", "full", tokenizer())
    out("tokenizer", "merges-pairs", tokenizer(merge_form="pair"))
    out("tokenizer", "bytelevel-regex", tokenizer(pre="bytelevel"))
    out("tokenizer", "no-pre", tokenizer(pre=None))
    out("tokenizer", "no-added-no-post", tokenizer(added=False, post=False))
    out("tokenizer", "no-decoder", tokenizer(decoder=False))
    out("tokenizer", "merge-target-missing", tokenizer(vocab_extra=False))
    out("tokenizer", "wordpiece", tokenizer(model_type="WordPiece"))
    out("tokenizer", "bad-truncated", tokenizer()[:700])
    out("tokenizer", "bad-not-object", "[1,2,3]")
    out("tokenizer", "empty-vocab", json.dumps({"model": {"type": "BPE", "vocab": {}, "merges": []}}))
    out("tokenizer", "minimal", json.dumps({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
                                                      "merges": ["a b"]}}))
    out("tokenizer", "dup-ids", json.dumps({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []},
                                             "added_tokens": [{"id": 0, "content": "a", "special": True}]}))
    out("tokenizer", "huge-id", json.dumps({"model": {"type": "BPE", "vocab": {"a": 2147483647}, "merges": []}}))


# ---- memory-state files ------------------------------------------------------------------------------
def fnv(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def state(n_layers, d_key, d, fp=0x0123456789abcdef, version=1, written=None, fill=0.5, payload_size=None,
          checksum=None):
    w = struct.pack("<%df" % (n_layers * d_key * d), *([fill] * (n_layers * d_key * d)))
    z = struct.pack("<%df" % (n_layers * d_key), *([1.0] * (n_layers * d_key)))
    wr = bytes(written if written is not None else [1] * n_layers)
    payload = w + z + wr
    hdr = b"ARMTSTAT" + struct.pack("<IIIIQQQ", version, n_layers, d_key, d, fp,
                                    len(payload) if payload_size is None else payload_size,
                                    fnv(payload) if checksum is None else checksum) + bytes(16)
    return hdr + payload


def gen_state():
    clean("state")
    out("state", "tiny-shape", state(3, 48, 64))
    out("state", "small-1x2x3", state(1, 2, 3))
    out("state", "small-2x6x4-unwritten", state(2, 6, 4, written=[0, 1], fill=0.0))
    out("state", "bad-version", state(1, 2, 3, version=2))
    out("state", "bad-written-flag", state(1, 2, 3, written=[7]))
    out("state", "bad-checksum", state(1, 2, 3, checksum=5))
    out("state", "bad-payload-size", state(1, 2, 3, payload_size=99))
    out("state", "truncated", state(1, 2, 3)[:-3])
    out("state", "trailing", state(1, 2, 3) + b"\0")
    out("state", "other-model", state(1, 2, 3, fp=42))
    out("state", "header-only", state(1, 2, 3)[:64])
    out("state", "bad-magic", b"ARMTSTAX" + state(1, 2, 3)[8:])
    out("state", "empty", b"")


# ---- layered checkpoint configs ----------------------------------------------------------------------
HF = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
      "num_attention_heads": 4, "num_hidden_layers": 3, "num_key_value_heads": 2, "vocab_size": 256,
      "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False}
FULL = {"version": 1, "hidden_size": 64, "n_layers": 3, "n_heads": 4, "n_kv_heads": 2, "head_dim": 16,
        "intermediate_size": 128, "vocab_size": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "rope_type": "default", "rope_factor": 1.0, "rope_low_freq_factor": 1.0, "rope_high_freq_factor": 4.0,
        "rope_original_max_pos": 8192, "tie_word_embeddings": 0, "num_mem_tokens": 4, "d_mem": 8,
        "segment_size": 16, "correction": 1}


def ck(meta, cfg, armt=None, adapter=None):
    parts = [meta if meta is not None else "", json.dumps(cfg) if isinstance(cfg, dict) else cfg]
    if armt is not None or adapter is not None:
        parts.append(json.dumps(armt) if isinstance(armt, dict) else (armt or ""))
    if adapter is not None:
        parts.append(json.dumps(adapter) if isinstance(adapter, dict) else adapter)
    return "\0".join(parts)


def gen_ckpt_config():
    clean("ckpt_config")
    armt = {"num_mem_tokens": 4, "segment_size": 16, "d_mem": 8, "correction": True}
    out("ckpt_config", "hf-only", ck("", HF))
    out("ckpt_config", "hf-armt-fields", ck("", dict(HF, num_mem_tokens=4, segment_size=16)))
    out("ckpt_config", "hf-plus-armt", ck("", HF, armt))
    out("ckpt_config", "hf-armt-adapter", ck("", HF, armt, {"r": 4, "lora_alpha": 8, "peft_type": "LORA"}))
    out("ckpt_config", "meta-full", ck(json.dumps(FULL), ""))
    out("ckpt_config", "meta-full-and-dir", ck(json.dumps(FULL), HF, armt))
    out("ckpt_config", "meta-disagrees", ck(json.dumps(dict(FULL, d_mem=16)), HF, dict(armt, d_mem=4)))
    out("ckpt_config", "llama3-rope", ck("", dict(HF, rope_scaling={"rope_type": "llama3", "factor": 32.0,
                                                                     "low_freq_factor": 1.0,
                                                                     "high_freq_factor": 4.0,
                                                                     "original_max_position_embeddings": 8192}),
                                         armt))
    out("ckpt_config", "rope-params-5x", ck("", dict(HF, rope_parameters={"rope_type": "default",
                                                                          "rope_theta": 500000.0}), armt))
    out("ckpt_config", "bad-meta-json", ck("{\"version\": 1,", HF, armt))
    out("ckpt_config", "bad-armt-type", ck("", HF, {"num_mem_tokens": "four"}))
    out("ckpt_config", "bad-adapter", ck("", HF, armt, "{\"r\": -1}"))
    out("ckpt_config", "nothing", "")


# ---- ids text ----------------------------------------------------------------------------------------
def gen_ids():
    clean("ids")
    out("ids", "plain", "\x0a1 2 3 4\n5,6,7\n")
    out("ids", "comments", "\x01# header\n10, 20 # trailing\n#only\n30\n")
    out("ids", "signs", "\x02+1 -0 +0 2\n")
    out("ids", "tabs-crlf", "\x03\t1\t2\r\n3\r\n")
    out("ids", "leading-zeros", "\x0400000000000000000000000000000000000000000000000000000000000000000007\n")
    out("ids", "long-word", "\x04" + "1" * 80 + "\n")
    out("ids", "out-of-range", "\x00999999\n")
    out("ids", "negative", "\x05-3\n")
    out("ids", "word", "\x051 two 3\n")
    out("ids", "empty", "\x05")
    out("ids", "only-comment", "\x05# nothing\n")
    out("ids", "nul-inside", b"\x0512\x00ab 3\n")


if __name__ == "__main__":
    gen_tokenizer()
    gen_state()
    gen_ckpt_config()
    gen_ids()
