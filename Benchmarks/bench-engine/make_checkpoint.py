#!/usr/bin/env python3
"""bench-engine's checkpoint: a Qwen3.5-0.8B-shaped Qwen3_5ForCausalLM with random weights, saved by
transformers' save_pretrained in bf16, plus the benchmark's token sequence.

  /opt/distil-venv/bin/python Benchmarks/bench-engine/make_checkpoint.py OUT_DIR [PROMPT CONTINUATION]

Shape: hidden 1024, 24 layers (3 Gated DeltaNet : 1 gated attention), vocab 248,320, tied embeddings,
MLP 3584, attention 8 heads x 256 (2 KV heads, partial rotary 0.25), DeltaNet 16 key / 16 value heads
of 128, conv kernel 4 (about 0.75B parameters). Run by bench-engine when OUT_DIR/model is missing.
"""
import json, os, random, sys
import torch
from transformers import Qwen3_5TextConfig, Qwen3_5ForCausalLM

out = sys.argv[1]
prompt = int(sys.argv[2]) if len(sys.argv) > 2 else 512
cont = int(sys.argv[3]) if len(sys.argv) > 3 else 512
torch.manual_seed(0)
cfg = Qwen3_5TextConfig(
    vocab_size=248320, hidden_size=1024, num_hidden_layers=24, intermediate_size=3584,
    layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"] * 6,
    num_attention_heads=8, num_key_value_heads=2, head_dim=256,
    linear_num_key_heads=16, linear_num_value_heads=16, linear_key_head_dim=128, linear_value_head_dim=128,
    linear_conv_kernel_dim=4, rms_norm_eps=1e-6, max_position_embeddings=262144, tie_word_embeddings=True,
    rope_parameters={"rope_theta": 10000000.0, "partial_rotary_factor": 0.25, "rope_type": "default"},
    eos_token_id=248044, bos_token_id=248044)
model = Qwen3_5ForCausalLM(cfg)
with torch.no_grad():
    for n, p in model.named_parameters():
        if "norm" in n or "A_log" in n or "dt_bias" in n:
            p.add_(torch.randn_like(p) * 0.1)
model.to(torch.bfloat16).save_pretrained(os.path.join(out, "model"), safe_serialization=True)
rng = random.Random(1)
tokens = [rng.randrange(0, 248000) for _ in range(prompt + cont)]
with open(os.path.join(out, "tokens.json"), "w") as f:
    json.dump({"prompt": tokens[:prompt], "continuation": tokens[prompt:]}, f)
print("parameters:", sum(p.numel() for p in model.parameters()))
