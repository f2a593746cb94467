#!/usr/bin/env python3
"""Dev-only: makes the embedded demo under demo/ (committed; CI and users never run this).

  /opt/distil-venv/bin/python scripts/dev/make_demo.py      (torch, transformers, tokenizers, zstandard)

What it makes, deterministically (fixed seeds):
  demo/corpus.jsonl.zst      ~400 English documents (Python standard-library docstrings: PSF-licensed text)
  demo/tokenizer.json        a byte-level BPE trained on the corpus, in exactly the shape Qwen3.5 ships
                             (NFC, Split on the Qwen3.5 regex + ByteLevel, BPE, ByteLevel decoder)
  demo/teacher/              a tiny Qwen3.5-MoE (the real teacher's architecture: Gated DeltaNet and
                             gated attention layers, routed experts top-k plus a shared expert)
                             trained on the corpus
  demo/king/, demo/challenger/  two tiny dense Qwen3.5 students distilled from the teacher by KL on
                             corpus text, the king for few steps, the challenger for many, so the
                             challenger genuinely beats the king by far more than 1%
  demo/commitments.jsonl     the two students' commitments (king committed first)
Checkpoints are saved with save_pretrained in bfloat16 (safetensors), as miners upload them.
"""
import inspect, io, json, os, pkgutil, random, re, shutil, sys, importlib, warnings

import torch
import torch.nn.functional as F
import zstandard
from tokenizers import Tokenizer, Regex, models, normalizers, pre_tokenizers, decoders, trainers
from transformers import (Qwen3_5TextConfig, Qwen3_5ForCausalLM, Qwen3_5MoeTextConfig, Qwen3_5MoeForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DEMO = os.path.join(ROOT, "demo")
QWEN35_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB = 512
torch.manual_seed(97)
random.seed(97)
torch.set_num_threads(2)
warnings.filterwarnings("ignore")


def corpus():
    """Docstrings of standard-library modules, classes and functions, as paragraphs of prose."""
    names = sorted(m.name for m in pkgutil.iter_modules() if not m.name.startswith("_"))
    docs, seen = [], set()
    for name in names:
        if name in ("antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc_data") or "test" in name:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(name)
        except BaseException:
            continue
        if not getattr(mod, "__file__", "") or "site-packages" in (mod.__file__ or ""):
            continue
        objs = [mod] + [v for _, v in sorted(vars(mod).items()) if inspect.isclass(v) or inspect.isfunction(v)]
        for o in objs:
            d = inspect.getdoc(o) or ""
            d = re.sub(r"[ \t]+", " ", d).strip()
            if len(d) >= 300 and d not in seen and d.isascii():
                seen.add(d)
                docs.append(d)
    random.shuffle(docs)
    return docs[:420]


def train_tokenizer(docs):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN35_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - len(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(docs, trainer)
    tok.add_special_tokens(SPECIALS)
    return tok


def save_tokenizer_files(tok, d):
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                   "model_max_length": 4096, "add_prefix_space": False}, f, indent=2, sort_keys=True)


def hybrid(hidden, layers, eos):
    return dict(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                head_dim=hidden // 4, rms_norm_eps=1e-6, max_position_embeddings=1024,
                layer_types=(["linear_attention"] * 3 + ["full_attention"]) * (layers // 4),
                linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=hidden // 4,
                linear_value_head_dim=hidden // 4, linear_conv_kernel_dim=4,
                rope_parameters={"rope_theta": 10000.0, "partial_rotary_factor": 0.25, "rope_type": "default"},
                eos_token_id=eos, bos_token_id=eos, pad_token_id=eos)


def make_teacher(eos, seed):
    torch.manual_seed(seed)
    cfg = Qwen3_5MoeTextConfig(**hybrid(128, 4, eos), num_experts=8, num_experts_per_tok=2, moe_intermediate_size=96,
                               shared_expert_intermediate_size=128, tie_word_embeddings=True,
                               output_router_logits=False)
    return Qwen3_5MoeForCausalLM(cfg)


def make_student(eos, seed):
    torch.manual_seed(seed)
    return Qwen3_5ForCausalLM(Qwen3_5TextConfig(**hybrid(64, 4, eos), intermediate_size=160, tie_word_embeddings=True))


def batches(ids, seq, bs, steps, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - seq - 1, (bs,), generator=g)
        yield torch.stack([ids[s:s + seq] for s in starts])


def train_lm(model, ids, steps, lr):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    for i, x in enumerate(batches(ids, 128, 16, steps, 1)):
        out = model(input_ids=x, labels=x)
        opt.zero_grad(); out.loss.backward(); opt.step()
        if i % 200 == 0 or i == steps - 1:
            print(f"  teacher step {i}: loss {out.loss.item():.3f}", file=sys.stderr)
    model.eval()


def distil(student, teacher, ids, steps, lr, seed):
    opt = torch.optim.AdamW(student.parameters(), lr=lr)
    student.train()
    for i, x in enumerate(batches(ids, 128, 16, steps, seed)):
        with torch.no_grad():
            t = F.log_softmax(teacher(input_ids=x).logits.float(), -1)
        s = F.log_softmax(student(input_ids=x).logits.float(), -1)
        loss = (t.exp() * (t - s)).sum(-1).mean()
        opt.zero_grad(); loss.backward(); opt.step()
        if i % 200 == 0 or i == steps - 1:
            print(f"  student step {i}: KL {loss.item():.4f}", file=sys.stderr)
    student.eval()


def save_model(model, d, tokdir):
    if os.path.exists(d):
        shutil.rmtree(d)
    model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tokdir, f), os.path.join(d, f))
    model.to(torch.float32)


def main():
    os.makedirs(DEMO, exist_ok=True)
    docs = corpus()
    print(f"corpus: {len(docs)} documents, {sum(map(len, docs))} characters", file=sys.stderr)
    raw = "".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs).encode()
    with open(os.path.join(DEMO, "corpus.jsonl.zst"), "wb") as f:
        f.write(zstandard.ZstdCompressor(level=19).compress(raw))
    tok = train_tokenizer(docs)
    tokdir = os.path.join(DEMO, ".tok")
    save_tokenizer_files(tok, tokdir)
    shutil.copy(os.path.join(tokdir, "tokenizer.json"), os.path.join(DEMO, "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    ids = []
    for d in docs:
        ids += tok.encode(d).ids + [eos]
    ids = torch.tensor(ids)
    print(f"tokens: {len(ids)}", file=sys.stderr)

    teacher = make_teacher(eos, 1)
    train_lm(teacher, ids, int(os.environ.get("TEACHER_STEPS", 1500)), 3e-3)
    save_model(teacher, os.path.join(DEMO, "teacher"), tokdir)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    for name, steps, seed in (("king", int(os.environ.get("KING_STEPS", 60)), 2),
                              ("challenger", int(os.environ.get("CHALLENGER_STEPS", 800)), 3)):
        student = make_student(eos, seed)
        distil(student, teacher, ids, steps, 3e-3, seed)
        save_model(student, os.path.join(DEMO, name), tokdir)
    shutil.rmtree(tokdir)
    with open(os.path.join(DEMO, "commitments.jsonl"), "w") as f:
        for c in ({"uid": 1, "hotkey": "5DemoKingHotkey", "block": 100, "repo": "demo/king"},
                  {"uid": 2, "hotkey": "5DemoChallengerHotkey", "block": 150, "repo": "demo/challenger"}):
            f.write(json.dumps(c, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
