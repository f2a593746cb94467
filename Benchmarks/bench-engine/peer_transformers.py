#!/usr/bin/env python3
"""bench-engine's peer: transformers + torch fp32 scoring one continuation the way a PyTorch scorer
would: forward over prompt + continuation, log_softmax of the continuation positions' logits, KL
against the teacher's log-probabilities (the rows dl-kl decodes from the same teacher stream).

  peer_transformers.py DIR THREADS [--keep] [--warm] [--flush-denormal]
  (--keep: logits_to_keep, the LM head only where scored; --warm: time the second of two scorings)

Prints one JSON line: load_s, score_s, kl_mean, peak RSS (KiB) after loading and at the end.
"""
import json, os, sys, time
import numpy as np
import torch
from transformers import AutoModelForCausalLM


def peak_rss_kib():
    """VmHWM: this process image's peak resident set (ru_maxrss would include the parent's, across exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


d, threads = sys.argv[1], int(sys.argv[2])
keep = "--keep" in sys.argv
if "--flush-denormal" in sys.argv:   # subnormals to zero, as the engine computes (torch.set_flush_denormal)
    torch.set_flush_denormal(True)
warm = "--warm" in sys.argv
torch.set_num_threads(threads)
t0 = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(os.path.join(d, "model"), dtype=torch.float32)
model.eval()
load_s = time.perf_counter() - t0
rss_loaded = peak_rss_kib()
tok = json.load(open(os.path.join(d, "tokens.json")))
P, C = len(tok["prompt"]), len(tok["continuation"])
ids = torch.tensor([tok["prompt"] + tok["continuation"][:-1]])
vocab = model.config.vocab_size
teacher = torch.from_numpy(np.fromfile(os.path.join(d, "teacher-rows.f32"), dtype=np.float32).reshape(C, vocab))


def score():
    with torch.no_grad():
        if keep:
            logits = model(input_ids=ids, logits_to_keep=C).logits[0]
        else:
            logits = model(input_ids=ids).logits[0, P - 1:]
        ls = torch.log_softmax(logits, dim=-1)
        kl = (teacher.exp() * (teacher - ls)).sum(-1, dtype=torch.float64)
        return float(kl.mean())


first_s = None
if warm:   # an untimed first scoring (first-touch, kernel selection), as every prompt after an epoch's first
    t0 = time.perf_counter()
    score()
    first_s = time.perf_counter() - t0
t0 = time.perf_counter()
kl_mean = score()
score_s = time.perf_counter() - t0
print(json.dumps({"load_s": load_s, "score_s": score_s, "kl_mean": kl_mean, "rss_loaded_kib": rss_loaded,
                  "peak_rss_kib": peak_rss_kib(), "keep": keep, "first_s": first_s,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))
