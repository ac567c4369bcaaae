#!/usr/bin/env python3
"""make_tokenizer_fixture.py - trains the small byte-level BPE tokenizer used by tests/check_tokenizer.c and
records what HF `tokenizers` does with it.

Command that made the committed files (run from the repository root):

    python3 tools/make_tokenizer_fixture.py --out tests/data/tokenizer

Requirements: the `tokenizers` package (pip install tokenizers); tested with tokenizers 0.23.3 on Python 3.11.
Runs in about a second. The corpus is built into this script (a fixed text plus a seeded generator), so a re-run
with the same tokenizers version trains the same merges.

The tokenizer copies the shape of a LLaMA-3 tokenizer.json:
  - pre_tokenizer: Sequence[Split(LLaMA-3 regex, Isolated), ByteLevel(add_prefix_space=False,
    use_regex=False)]
  - model: BPE with ignore_merges=True (a pre-token found whole in the vocab is not merged)
  - added tokens after the learned vocab: <|begin_of_text|>, <|end_of_text|>, <|eot_id|> (special), plus one
    non-special added token "<|plain|>" so the non-special path is exercised too
  - post_processor: Sequence[ByteLevel, TemplateProcessing("<|begin_of_text|> $A")]
  - decoder: ByteLevel

Outputs (tests/data/tokenizer/):
  tokenizer.json  the trained tokenizer (tokenizer.save)
  cases.json      {"encode": [...], "decode": [...]}
      encode[i]: text, ids (add_special_tokens=False), ids_bos (add_special_tokens=True), ids_literal (special
                 tokens NOT parsed: encode_special_tokens=True), decoded (decode(ids), specials kept),
                 decoded_skip (decode(ids, skip_special_tokens=True))
      decode[i]: ids (arbitrary lists: partial UTF-8, specials, byte tokens), text, text_skip
      variants[i]: name, patch (pre_tokenizer to replace, model.ignore_merges to set, vocab_replace: [old, new]
                 pairs of model.vocab keys to rename, keeping the id), cases
                 [{text, ids}] (add_special_tokens=False)
      vocab_size: get_vocab_size(with_added_tokens=True)
"""
import argparse
import json
import os
import random

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
PLAIN = "<|plain|>"

BASE_CORPUS = """\
The quick brown fox jumps over the lazy dog. I'm sure they'll say it's fine; we've seen what you'd do.
DON'T PANIC! She said: "It's 10:45, and the train leaves at 11:05." They're here, aren't they?
Associative recurrent memory transformers read a long context segment by segment and keep a memory.
Le cœur a ses raisons que la raison ne connaît point. Ça va très bien, merci ! À bientôt, élève naïf.
Über den Wolken muss die Freiheit wohl grenzenlos sein. Straße, Größe, Mädchen, schön, Öl.
¿Dónde está la biblioteca? El niño comió mañana una piña. Señor Muñoz, ¡qué día!
Москва — столица России. Привет, как дела? Спасибо, хорошо.
Η γλώσσα μου έδωσαν ελληνική. Καλημέρα κόσμε.
我爱自然语言处理。今天天气很好，我们去公园散步吧。机器学习和深度学习是人工智能的重要分支。
日本語のテキストも少し含めます。東京は日本の首都です。ひらがなとカタカナ。
한국어 문장도 있습니다. 안녕하세요, 반갑습니다.
Emoji: 😀 😃 😄 😁 👍🏽 ❤️ 🎉🎉🎉 🚀 ✨ 👨‍👩‍👧‍👦 🇫🇷 🇯🇵
Numbers: 0 1 2 3 42 100 255 1024 2048 65536 3.14159 2.71828 1,000,000 12345678 987654321 2024-06-01
def forward(self, x):
    y = self.norm(x)  # comment
    return x + self.mlp(y) * 0.5

for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }
if (err != NULL && *err) return -1;
    indented    with    spaces
\ttabs\tand\ttabs\t\tdouble
trailing spaces   
multiple


newlines\r\nwindows line\r\n
<html><body class="main">Hello &amp; welcome</body></html>
{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}
https://example.com/path?query=1&x=y#frag  user@example.org
"""

WORDS = ("memory segment token layer model attention context recurrent associative transformer read write "
         "update gradient batch diagonal schedule kernel device buffer queue program tensor weight bias norm "
         "the and of to in is that for it with as was on be at by this have from or one had not but what all "
         "were when we there can an your which their said if do will each about how up out them then she many "
         "some so these would other into has more her two like him see time could no make than first been its "
         "who now people my made over did down only way find use may water long little very after words called "
         "just where most know café naïve résumé façade jalapeño über straße").split()


def build_corpus():
    rng = random.Random(20240601)
    lines = [BASE_CORPUS]
    for _ in range(600):
        n = rng.randint(3, 14)
        words = []
        for _ in range(n):
            r = rng.random()
            if r < 0.75:
                w = rng.choice(WORDS)
                if rng.random() < 0.15:
                    w = w.capitalize()
                if rng.random() < 0.03:
                    w = w.upper()
                words.append(w)
            elif r < 0.87:
                words.append(str(rng.randint(0, 10 ** rng.randint(1, 7))))
            elif r < 0.93:
                words.append(rng.choice(["'s", "'ll", "'re", "'ve", "'m", "'d", "n't"]))
            else:
                words.append(rng.choice([",", ".", "!", "?", ":", ";", "...", "()", "[]", "{}", "->", "==",
                                         "#", "//", "/*", "*/", "\"", "'"]))
        sep = rng.choice([" ", " ", " ", "  ", "\t", "\n"])
        lines.append(sep.join(words))
    return "\n".join(lines)


ENCODE_TEXTS = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "I'm here. You're there. DON'T stop. We'LL see. it'S fine. They've gone, he'd said.",
    "Ça va très bien, élève naïf — à bientôt! Größe Straße",
    "我爱自然语言处理。今天天气很好。",
    "東京は日本の首都です。한국어 문장",
    "Emoji: 😀👍🏽❤️🎉 🚀✨ 👨‍👩‍👧‍👦 🇫🇷",
    "digits 12345678 and 3.14159 and 1,000,000 and 007",
    "   leading spaces",
    "trailing spaces     ",
    "a  b   c    d     e",
    "line one\nline two\n\nline four\r\nline five\r\n",
    "\n\n\n",
    "\ttab\tseparated\t\tvalues\t",
    " \t \n \t\n",
    "<|begin_of_text|>Hello<|eot_id|>",
    "System prompt<|eot_id|><|begin_of_text|>user: hi<|end_of_text|>",
    "not a special <|begin_of_text and <|eot_id| partial",
    "plain added: <|plain|> and again<|plain|><|plain|>",
    "def forward(self, x):\n    return x + 1  # comment\n",
    "if (err != NULL && *err) { return -1; }",
    "<html><body class=\"main\">Hello &amp; welcome</body></html>",
    "unseen words: zyxwvut qqqq xylophone",
    "Mixed: café 咖啡 ☕ coffee 12 €",
    "non-breaking\u00a0space, ideographic\u3000space, nel\u0085x, thin\u2009space",
    "combining e\u0301 and a\u0308 vs é ä",
    "control \x01\x02\x7f chars",
    "nul \x00 byte",
    "A" * 300,
    "ab" * 150 + " " + "9" * 40,
    "'s 's 'S 'T 'Re 'VE 'M 'LL 'D",
    "x" + " " * 25 + "y",
    "Привет, как дела? Καλημέρα κόσμε.",
    "memory segment token layer model attention",
]


def _bytelevel(prefix, use_regex):
    return {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True, "use_regex": use_regex}


# Whole-word entries put in place of three byte tokens that no merge uses (bytes 0x10-0x12, control characters
# absent from the texts): ids stay dense, so HF keeps the added tokens' ids (it renumbers them after a gap).
EXTRA_VOCAB = [["\u0110", "\u0120zyxwvut"], ["\u0111", "\u0120qqqq"], ["\u0112", "\u0120xylophone"]]

VARIANTS = [
    # Whole words that only exist in the vocab (not reachable by merges, as happens in LLaMA-3's vocab):
    # with ignore_merges they come out as one token, without it they are merged from bytes.
    ("extra_vocab_ignore_merges", {"vocab_replace": EXTRA_VOCAB}),
    ("extra_vocab_no_ignore_merges", {"vocab_replace": EXTRA_VOCAB, "ignore_merges": False}),
    # GPT-2 style: ByteLevel alone, with its own regex and a prefix space
    ("gpt2_bytelevel", {"pre_tokenizer": _bytelevel(True, True)}),
    # ByteLevel's prefix space after a Split: HF adds it to every piece the Split produced
    ("split_then_prefix", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
        _bytelevel(True, False)]}}),
    # a literal (String) pattern with the Removed behavior
    ("split_string_removed", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": False},
        _bytelevel(False, False)]}}),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/tokenizer")
    ap.add_argument("--vocab-size", type=int, default=2000)
    args = ap.parse_args()

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator([build_corpus()], trainer=trainer)
    # Added tokens come after the learned vocab, as in LLaMA-3 (ids 128000+ there).
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    tok.add_tokens([AddedToken(PLAIN, special=False)])
    bos = tok.token_to_id(SPECIALS[0])
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{SPECIALS[0]} $A", pair=f"{SPECIALS[0]} $A {SPECIALS[0]} $B:1",
                                      special_tokens=[(SPECIALS[0], bos)]),
    ])

    os.makedirs(args.out, exist_ok=True)
    tok_path = os.path.join(args.out, "tokenizer.json")
    tok.save(tok_path)
    tok = Tokenizer.from_file(tok_path)  # what the C side sees

    enc_cases = []
    for text in ENCODE_TEXTS:
        tok.encode_special_tokens = False
        ids = tok.encode(text, add_special_tokens=False).ids
        ids_bos = tok.encode(text, add_special_tokens=True).ids
        tok.encode_special_tokens = True
        ids_lit = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        enc_cases.append({
            "text": text, "ids": ids, "ids_bos": ids_bos, "ids_literal": ids_lit,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip": tok.decode(ids, skip_special_tokens=True),
        })

    def ids_of(s):
        return tok.encode(s, add_special_tokens=False).ids

    def byte_tok(b):
        return tok.token_to_id(BYTE_CHARS[b])

    dec_lists = [
        [],
        [bos] + ids_of("Hello") + [tok.token_to_id("<|eot_id|>")],
        ids_of("😀")[:1],                                     # first part of an emoji only
        [byte_tok(0xF0), byte_tok(0x9F)],                      # truncated 4-byte sequence
        [byte_tok(0xE6), byte_tok(0x41)],                  # lead byte then ASCII
        [byte_tok(0xFF), byte_tok(0xC0), byte_tok(0x80)],      # never-valid bytes
        [byte_tok(0xED), byte_tok(0xA0), byte_tok(0x80)],      # surrogate encoding
        ids_of("a\u00e9") + [tok.token_to_id(PLAIN)] + ids_of(" b") + [tok.token_to_id("<|end_of_text|>")],
        [byte_tok(b) for b in range(256)],
    ]
    dec_cases = [{"ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                  "text_skip": tok.decode(ids, skip_special_tokens=True)} for ids in dec_lists]

    # Variants: the same vocab and merges under other pre-tokenizer / model options. The C test applies
    # "patch" to tokenizer.json (pre_tokenizer replaced, model.ignore_merges set) and compares ids.
    base = json.loads(tok.to_str())
    variants = []
    for name, patch in VARIANTS:
        d = json.loads(json.dumps(base))
        if "pre_tokenizer" in patch:
            d["pre_tokenizer"] = patch["pre_tokenizer"]
        for old, new in patch.get("vocab_replace", []):
            v = d["model"]["vocab"]
            assert new not in v
            v[new] = v.pop(old)
        if "ignore_merges" in patch:
            d["model"]["ignore_merges"] = patch["ignore_merges"]
        vt = Tokenizer.from_str(json.dumps(d))
        variants.append({"name": name, "patch": patch,
                         "cases": [{"text": t, "ids": vt.encode(t, add_special_tokens=False).ids}
                                   for t in ENCODE_TEXTS]})

    with open(os.path.join(args.out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizers_version": __import__("tokenizers").__version__,
                   "vocab_size": tok.get_vocab_size(with_added_tokens=True),
                   "encode": enc_cases, "decode": dec_cases, "variants": variants},
                  f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"vocab {tok.get_vocab_size()} (with added tokens), wrote {tok_path} and cases.json")


def _bytes_to_unicode():
    """The GPT-2 byte -> printable character table (the same one ByteLevel uses)."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_CHARS = _bytes_to_unicode()

if __name__ == "__main__":
    main()
