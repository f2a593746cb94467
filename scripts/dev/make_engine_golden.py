#!/usr/bin/env python3
"""Dev-only: golden fixtures for the engine tests (Tests/DistilModelTests/Fixtures/).

  /opt/distil-venv/bin/python scripts/dev/make_engine_golden.py [NAME ...]    (torch, transformers)

With qwen3_5_moe-teacher-layout, only that fixture is (re)made; without, all of them.

For each architecture it saves a tiny random checkpoint the way transformers saves them (bf16
safetensors via save_pretrained) and reference outputs computed by transformers in float64 on those
same bf16 weights: full logits at every position of fixed token sequences, and a 12-token greedy
continuation; for a longer sequence (long enough for several DeltaNet chunks and attention blocks) the
logits of its last positions only, to keep the files small. The demo teacher (demo/teacher) gets
references too. kl-pairs.golden.json holds per-position KL(teacher || student) in float64 between pairs
of these checkpoints.
"""
import json, os, shutil, sys, zlib
import torch
import random
from transformers import (Qwen3Config, Qwen3ForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM,
                          LlamaConfig, LlamaForCausalLM, AutoModelForCausalLM,
                          Qwen3_5TextConfig, Qwen3_5ForCausalLM, Qwen3_5Config, Qwen3_5ForConditionalGeneration,
                          Qwen3_5MoeTextConfig, Qwen3_5MoeForCausalLM, Qwen3_5MoeConfig, Qwen3_5MoeForConditionalGeneration)
from safetensors.torch import load_file, save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "Tests", "DistilModelTests", "Fixtures")
SEQS = [[1, 5, 9, 33, 2, 250, 7, 7, 7, 100, 3, 64], [17], [200, 201, 202, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]]
# 150 tokens: three DeltaNet chunks of 64 and two attention query blocks of 128; logits kept from LONG_FROM.
LONG = [random.Random(7).randrange(1, 250) for _ in range(150)]
LONG_FROM = 118


def common(vocab=256):
    return dict(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=96, max_position_embeddings=256, rms_norm_eps=1e-6, eos_token_id=255, bos_token_id=0)


def tiny(name, cls, cfg_cls, **extra):
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    cfg = cfg_cls(**{**common(), **extra})
    model = cls(cfg)
    with torch.no_grad():   # biases and norms away from their init values so they matter
        for n, p in model.named_parameters():
            if "norm" in n or n.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.2)
    d = os.path.join(OUT, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    return d


QWEN35_TEXT = dict(vocab_size=256, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                   head_dim=16, intermediate_size=96, rms_norm_eps=1e-6, eos_token_id=255, bos_token_id=0,
                   layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"],
                   linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16, linear_value_head_dim=8,
                   linear_conv_kernel_dim=4, max_position_embeddings=256,
                   rope_parameters={"rope_theta": 10000.0, "partial_rotary_factor": 0.25, "rope_type": "default"})


def tiny_qwen35(name, multimodal):
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    if multimodal:
        cfg = Qwen3_5Config(text_config=dict(QWEN35_TEXT, tie_word_embeddings=False),
                            vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                                               patch_size=4, temporal_patch_size=2, spatial_merge_size=2, in_channels=3),
                            tie_word_embeddings=False)
        model = Qwen3_5ForConditionalGeneration(cfg)
    else:
        model = Qwen3_5ForCausalLM(Qwen3_5TextConfig(**QWEN35_TEXT, tie_word_embeddings=True))
    with torch.no_grad():   # norms (zero-centred: init 0), decays and biases away from their init values
        for n, p in model.named_parameters():
            if "norm" in n or n.endswith("bias") or "A_log" in n or "dt_bias" in n:
                p.add_(torch.randn_like(p) * 0.3)
    d = os.path.join(OUT, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    return d, (Qwen3_5ForConditionalGeneration if multimodal else Qwen3_5ForCausalLM)


def tiny_qwen35_moe(name):
    """The teacher's architecture in miniature: hybrid layers, 8 experts top-2 plus a shared expert."""
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    text = {k: v for k, v in QWEN35_TEXT.items() if k != "intermediate_size"}
    cfg = Qwen3_5MoeTextConfig(**text, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32,
                               shared_expert_intermediate_size=48, tie_word_embeddings=False)
    model = Qwen3_5MoeForCausalLM(cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n or "A_log" in n or "dt_bias" in n:
                p.add_(torch.randn_like(p) * 0.3)
            if n.endswith("mlp.gate.weight"):   # a router that really discriminates
                p.normal_(0, 0.5)
    d = os.path.join(OUT, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    return d


def tiny_qwen35_moe_teacher_layout(name):
    """The teacher's checkpoint layout in miniature: Qwen3_5MoeForConditionalGeneration (text model
    under model.language_model., a vision tower under model.visual.) plus a multi-token-prediction
    layer under mtp.*, which transformers neither builds nor saves: added here with the names and
    shapes the real checkpoint uses (fc [H, 2H], its two pre-fc norms, one full-attention layer with
    experts, a norm), in bf16. The engine must run the text model and leave both extras unread."""
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    text = {k: v for k, v in QWEN35_TEXT.items() if k != "intermediate_size"}
    cfg = Qwen3_5MoeConfig(text_config=dict(text, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32,
                                            shared_expert_intermediate_size=48, tie_word_embeddings=False,
                                            mtp_num_hidden_layers=1),
                           vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                                              patch_size=4, temporal_patch_size=2, spatial_merge_size=2, in_channels=3),
                           tie_word_embeddings=False)
    model = Qwen3_5MoeForConditionalGeneration(cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n or "A_log" in n or "dt_bias" in n:
                p.add_(torch.randn_like(p) * 0.3)
            if n.endswith("mlp.gate.weight"):
                p.normal_(0, 0.5)
    d = os.path.join(OUT, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    path = os.path.join(d, "model.safetensors")
    t = load_file(path)
    H = QWEN35_TEXT["hidden_size"]
    g = torch.Generator().manual_seed(97)
    mtp = {"mtp.fc.weight": torch.randn(H, 2 * H, generator=g), "mtp.norm.weight": torch.randn(H, generator=g),
           "mtp.pre_fc_norm_embedding.weight": torch.randn(H, generator=g), "mtp.pre_fc_norm_hidden.weight": torch.randn(H, generator=g)}
    last = "model.language_model.layers.3."   # a full-attention layer: its tensors' names and shapes
    for k, v in t.items():
        if k.startswith(last):
            mtp["mtp.layers.0." + k[len(last):]] = torch.randn(v.shape, generator=g)
    assert any(k.startswith("model.visual.") for k in t) and not any(k.startswith("mtp.") for k in t)
    t.update({k: v.to(torch.bfloat16).contiguous() for k, v in mtp.items()})
    save_file(t, path, metadata={"format": "pt"})
    return d, Qwen3_5MoeForConditionalGeneration


def fused_copy(src, dst):
    """The same weights with experts fused as in memory (experts.gate_up_proj [E, 2I, H], experts.down_proj [E, H, I])."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    t = load_file(os.path.join(src, "model.safetensors"))
    out, groups = {}, {}
    for k, v in t.items():
        if ".mlp.experts." in k:
            base, rest = k.split(".mlp.experts.")
            e, proj = rest.split(".")[0], rest.split(".")[1]
            groups.setdefault(base, {}).setdefault(int(e), {})[proj] = v
        else:
            out[k] = v
    for base, experts in groups.items():
        n = len(experts)
        out[base + ".mlp.experts.gate_up_proj"] = torch.stack(
            [torch.cat([experts[e]["gate_proj"], experts[e]["up_proj"]], 0) for e in range(n)]).contiguous()
        out[base + ".mlp.experts.down_proj"] = torch.stack([experts[e]["down_proj"] for e in range(n)]).contiguous()
    save_file(out, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})


def load64(d, cls=AutoModelForCausalLM):
    mtype = json.load(open(os.path.join(d, "config.json"))).get("model_type", "")
    kw = {"experts_implementation": "eager"} if "moe" in mtype else {}
    model = cls.from_pretrained(d, dtype=torch.float64, **kw)
    model.eval()
    return model


def reference(d, name, cls=AutoModelForCausalLM):
    model = load64(d, cls)
    out = {"model": name, "sequences": []}
    with torch.no_grad():
        for seq in SEQS + [LONG]:
            logits = model(input_ids=torch.tensor([seq])).logits[0]
            ids = list(seq)
            for _ in range(12):   # greedy, recomputing the full sequence (no cache) in float64
                nxt = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
                ids.append(nxt)
            first = LONG_FROM if seq is LONG else 0
            out["sequences"].append({"tokens": seq, "logits_from": first, "logits": logits[first:].tolist(),
                                     "greedy": ids[len(seq):]})
    with open(os.path.join(OUT, name + ".golden.json"), "w") as f:
        json.dump(out, f)


def kl_pairs(pairs):
    """Per-position KL(teacher || student) over the full vocabulary in float64, teacher and student
    each run by transformers on their bf16 checkpoints."""
    out = []
    for t_dir, t_name, s_dir, s_name in pairs:
        teacher, student = load64(t_dir), load64(s_dir)
        with torch.no_grad():
            for seq in SEQS[:1] + SEQS[2:] + [LONG]:
                lt = torch.log_softmax(teacher(input_ids=torch.tensor([seq])).logits[0], -1)
                ls = torch.log_softmax(student(input_ids=torch.tensor([seq])).logits[0], -1)
                kl = (lt.exp() * (lt - ls)).sum(-1)
                out.append({"teacher": t_name, "student": s_name, "tokens": seq, "kl": kl.tolist(), "mean": float(kl.mean())})
    with open(os.path.join(OUT, "kl-pairs.golden.json"), "w") as f:
        json.dump(out, f)


def main():
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ["qwen3_5_moe-teacher-layout"]:
        d, cls = tiny_qwen35_moe_teacher_layout("qwen3_5_moe-teacher-layout")
        reference(d, "qwen3_5_moe-teacher-layout", cls)
        return
    elif sys.argv[1:]:
        sys.exit("usage: make_engine_golden.py [qwen3_5_moe-teacher-layout]")
    reference(tiny("qwen3-tied", Qwen3ForCausalLM, Qwen3Config, head_dim=16, tie_word_embeddings=True), "qwen3-tied")
    reference(tiny("qwen2-bias", Qwen2ForCausalLM, Qwen2Config, tie_word_embeddings=False), "qwen2-bias")
    reference(tiny("llama-untied", LlamaForCausalLM, LlamaConfig, tie_word_embeddings=False, rope_theta=500000.0), "llama-untied")
    reference(os.path.join(ROOT, "demo", "teacher"), "demo-teacher")
    d, cls = tiny_qwen35("qwen3_5-text", False)
    reference(d, "qwen3_5-text", cls)
    d, cls = tiny_qwen35("qwen3_5-multimodal", True)
    reference(d, "qwen3_5-multimodal", cls)
    d = tiny_qwen35_moe("qwen3_5_moe")
    reference(d, "qwen3_5_moe", Qwen3_5MoeForCausalLM)
    fused_copy(d, os.path.join(OUT, "qwen3_5_moe-fused"))
    d, cls = tiny_qwen35_moe_teacher_layout("qwen3_5_moe-teacher-layout")
    reference(d, "qwen3_5_moe-teacher-layout", cls)
    # Qwen3-MoE: sparse layers with a dense one between (mlp_only_layers), top-k not renormalised.
    reference(tiny("qwen3_moe", Qwen3MoeForCausalLM, Qwen3MoeConfig, head_dim=16, num_hidden_layers=3, num_experts=8,
                   num_experts_per_tok=2, moe_intermediate_size=32, norm_topk_prob=False, decoder_sparse_step=1,
                   mlp_only_layers=[1], tie_word_embeddings=False), "qwen3_moe")
    # Llama's rope-scaling variants, with original contexts short enough that the 150-token sequence
    # reaches the scaled regime.
    for kind, params in [("linear", {"factor": 2.0}),
                         ("dynamic", {"factor": 2.0}),
                         ("llama3", {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 64}),
                         ("yarn", {"factor": 4.0, "original_max_position_embeddings": 64})]:
        name = "llama-rope-" + kind
        reference(tiny(name, LlamaForCausalLM, LlamaConfig, tie_word_embeddings=True,
                       rope_parameters={"rope_type": kind, "rope_theta": 500000.0, **params}), name)
    kl_pairs([(os.path.join(OUT, "qwen3_5_moe"), "qwen3_5_moe", os.path.join(OUT, "qwen3_5-text"), "qwen3_5-text"),
              (os.path.join(OUT, "qwen3-tied"), "qwen3-tied", os.path.join(OUT, "llama-untied"), "llama-untied")])


if __name__ == "__main__":
    main()
