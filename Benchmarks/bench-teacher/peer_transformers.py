#!/usr/bin/env python3
"""bench-teacher's transformers peer: the teacher slice run by transformers' `generate` (greedy, KV cache),
prefill and decode timed the way bench-teacher times dl-teacher.

  BENCH_PREFILL=FILE BENCH_DECODE=FILE [BENCH_PREFILL_BATCH=8] peer_transformers.py SLICE DTYPE THREADS NEW_TOKENS BATCHES

DTYPE float32 or bfloat16; BATCHES comma-separated (1,4,8,16,40). The prompts are the files bench-teacher
writes for dl-teacher (JSON lines with "tokens"), named in the environment.

- prefill: generate(max_new_tokens=1) over BENCH_PREFILL's prompts, in batches of
  BENCH_PREFILL_BATCH (the prompt forward and one LM-head row per prompt: generate keeps only the last
  position's logits), minus nothing: loading is outside the timer.
- decode at batch B: one generate(max_new_tokens=1 + NEW_TOKENS) on B prompts, timed by a streamer from the
  token the prefill produced to the last: NEW_TOKENS decode steps, divided by B x NEW_TOKENS (seconds per
  generated token; a difference of two generate calls, as bench-teacher times dl-teacher, drowned in the
  noise of this shared machine).
- routing: a hook on every router records the experts each decode step selects; printed as the mean
  number of distinct experts per layer and step at each batch size (what a step that reads each expert
  once would read).

Prints one JSON line: load_s, prefill_s, decode {B: {"tn", "decode_s", "s_per_token", "distinct_experts", ...}},
peak RSS (VmHWM, KiB) after loading and at the end, versions.
"""
import json, os, sys, time
import torch
from transformers import AutoModelForCausalLM


def peak_rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def prompts(path):
    return [json.loads(l)["tokens"] for l in open(path) if l.strip()]


def main():
    d, dtype, threads = sys.argv[1], getattr(torch, sys.argv[2]), int(sys.argv[3])
    new = int(sys.argv[4])
    batches = [int(b) for b in sys.argv[5].split(",")]
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(d, dtype=dtype)
    model.eval()
    load_s = time.perf_counter() - t0
    rss_loaded = peak_rss_kib()

    steps = []   # per router call: the set of experts selected over the rows of that call
    def hook(_m, _inp, out):
        steps.append(set(out[2].flatten().tolist()))
    routers = [m for n, m in model.named_modules() if n.endswith("mlp.gate")]
    for r in routers:
        r.register_forward_hook(hook)

    class Clock:
        """generate's streamer: a timestamp per put (the prompt, then each generated token)."""
        def __init__(self):
            self.t = []
        def put(self, _value):
            self.t.append(time.perf_counter())
        def end(self):
            pass

    def gen(ids, n, clock=None):
        x = torch.tensor(ids)
        with torch.no_grad():
            t = time.perf_counter()
            out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n,
                                 do_sample=False, pad_token_id=0, streamer=clock)
            return time.perf_counter() - t, out

    result = {"load_s": load_s, "dtype": sys.argv[2], "threads": torch.get_num_threads(), "torch": torch.__version__,
              "rss_loaded_kib": rss_loaded, "decode": {}}
    pre = prompts(os.environ["BENCH_PREFILL"])
    pb = int(os.environ.get("BENCH_PREFILL_BATCH", "8"))
    if pre:
        gen([pre[0][:16]], 1)   # untimed, short: first-touch of the weights and kernel selection
        total = 0.0
        for i in range(0, len(pre), pb):
            total += gen(pre[i:i + pb], 1)[0]
        result["prefill_s"] = total
        result["prefill_tokens"] = sum(len(p) for p in pre)
    dec = prompts(os.environ["BENCH_DECODE"])
    for b in batches:
        ids = dec[:b]
        steps.clear()
        clock = Clock()
        tn, out = gen(ids, 1 + new, clock)
        # the prefill call of each router is the first len(routers) entries; decode steps follow
        per_step = steps[len(routers):]
        distinct = sum(len(s) for s in per_step) / max(1, len(per_step))
        # clock.t: the prompt, the token from the prefill, then one per decode step
        decode_s = clock.t[-1] - clock.t[1]
        result["decode"][str(b)] = {"tn": tn, "prefill_and_first_s": clock.t[1] - clock.t[0], "decode_s": decode_s,
                                    "s_per_token": decode_s / (b * new), "distinct_experts": distinct,
                                    "generated": int(out.shape[1] - len(ids[0]))}
    result["peak_rss_kib"] = peak_rss_kib()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
