#!/usr/bin/env python3
"""Dev-only: a real-width slice of the teacher (Qwen/Qwen3.5-35B-A3B) for bench-teacher (issue 17).

  /work/venv-torch/bin/python scripts/dev/make_teacher_slice.py OUT_DIR [--layers 4] [--vision-depth 27]
                                                                [--no-mtp] [--verify]

(torch + transformers 5.23, as docs/PERFORMANCE.md's venv). Writes OUT_DIR as the real checkpoint is laid
out, with random bf16 weights and only the first --layers of the 40 text layers (the 3:1 pattern:
--layers 4 is three Gated DeltaNet layers then one gated attention layer; --layers 2 is one of each):

- config.json: the real checkpoint's (Qwen3_5MoeForConditionalGeneration, model_type qwen3_5_moe, the
  text model under text_config: hidden 2048, attention 16 heads x 256 with 2 KV heads, output gate,
  partial rotary 0.25, rope theta 1e7, interleaved mrope sections [11, 11, 10]; DeltaNet 16 key and 32
  value heads of 128, conv kernel 4; 256 experts top-8 of width 512 plus a shared expert of 512 behind a
  sigmoid gate; RMS eps 1e-6; vocab 248,320; untied LM head; one MTP layer; the vision tower's
  vision_config) with num_hidden_layers and layer_types cut to the slice.
- Tensors named and shaped as the real checkpoint stores them: the text model under
  model.language_model.*, its routed experts fused per layer (mlp.experts.gate_up_proj [256, 1024, 2048],
  mlp.experts.down_proj [256, 2048, 512]), lm_head.weight; the vision tower model.visual.* (depth 27,
  width 1152, out 2048: every tensor); the multi-token-prediction head mtp.* (fc, the two pre-fc norms,
  norm, and one full-attention MoE layer whose 256 experts are stored one by one, as the real
  checkpoint stores its MTP experts). Shards model.safetensors-0000k-of-0000n.safetensors, one per text
  layer plus one each for the ends, the vision tower and the MTP head, with model.safetensors.index.json.
- Weights drawn as transformers initialises this model (normal(0, 0.02) matrices and embeddings; the
  (1 + w) RMS norms at zero, the gated DeltaNet norm at one; dt_bias one, A_log = log U(0.01, 16);
  zero biases; LayerNorms at one/zero), then norms, A_log and dt_bias jittered so they matter.
- tokenizer.json: the Qwen3.5 vocabulary from Tests/DistilTokenizerTests/Fixtures (decompressed).

Tensor names and shapes come from transformers' own model built on the meta device (nothing
allocated), so they are the ones transformers loads; --verify then loads the slice with
Qwen3_5MoeForConditionalGeneration in bf16, fails unless every text and vision weight was loaded from the
files (no missing key; the only unexpected keys are mtp.*, which transformers skips), and generates a few
tokens. It is a benchmark input (GBs), never a test fixture: do not commit it.
"""
import argparse, json, os, shutil, subprocess, sys, time
import torch
from safetensors.torch import save_file
from transformers import Qwen3_5MoeConfig, Qwen3_5MoeForConditionalGeneration

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOKENIZER = os.path.join(ROOT, "Tests", "DistilTokenizerTests", "Fixtures", "qwen3.5-tokenizer.json.zst")
PATTERN = ["linear_attention", "linear_attention", "linear_attention", "full_attention"]


def real_config(layers, vision_depth):
    """The real checkpoint's config.json, with the text model cut to `layers` layers of the 3:1 pattern."""
    types = (PATTERN * 10)[:layers] if layers != 2 else ["linear_attention", "full_attention"]
    text = {
        "attention_bias": False, "attention_dropout": 0.0, "attn_output_gate": True, "bos_token_id": None,
        "dtype": "bfloat16", "eos_token_id": 248044, "full_attention_interval": 4, "head_dim": 256,
        "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "layer_types": types,
        "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_num_key_heads": 16,
        "linear_num_value_heads": 32, "linear_value_head_dim": 128, "max_position_embeddings": 262144,
        "mamba_ssm_dtype": "float32", "model_type": "qwen3_5_moe_text", "moe_intermediate_size": 512,
        "mtp_num_hidden_layers": 1, "mtp_use_dedicated_embeddings": False, "num_attention_heads": 16,
        "num_experts": 256, "num_experts_per_tok": 8, "num_hidden_layers": layers, "num_key_value_heads": 2,
        "output_router_logits": False, "pad_token_id": None, "rms_norm_eps": 1e-06,
        "rope_parameters": {"mrope_interleaved": True, "mrope_section": [11, 11, 10], "partial_rotary_factor": 0.25,
                            "rope_theta": 10000000, "rope_type": "default"},
        "router_aux_loss_coef": 0.001, "shared_expert_intermediate_size": 512, "tie_word_embeddings": False,
        "use_cache": True, "vocab_size": 248320,
    }
    vision = {
        "deepstack_visual_indexes": [], "depth": vision_depth, "hidden_act": "gelu_pytorch_tanh", "hidden_size": 1152,
        "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4304, "model_type": "qwen3_5_moe",
        "num_heads": 16, "num_position_embeddings": 2304, "out_hidden_size": 2048, "patch_size": 16,
        "spatial_merge_size": 2, "temporal_patch_size": 2,
    }
    return {"architectures": ["Qwen3_5MoeForConditionalGeneration"], "image_token_id": 248056,
            "model_type": "qwen3_5_moe", "text_config": text, "tie_word_embeddings": False,
            "transformers_version": "4.57.0.dev0", "video_token_id": 248057, "vision_config": vision,
            "vision_end_token_id": 248054, "vision_start_token_id": 248053}


def meta_shapes(cfg):
    """Every tensor transformers' model holds for this config: name → shape (meta device, no memory)."""
    config = Qwen3_5MoeConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version")})
    with torch.device("meta"):
        model = Qwen3_5MoeForConditionalGeneration(config)
    return {n: tuple(t.shape) for n, t in model.state_dict().items()}


def mtp_shapes(shapes, H):
    """The MTP head as the real checkpoint stores it: fc over [embedding; hidden], its norms, and one
    full-attention MoE decoder layer (shaped as a text attention layer) with its experts one by one."""
    attn = next(i for i in range(10_000) if f"model.language_model.layers.{i}.self_attn.q_proj.weight" in shapes)
    p = f"model.language_model.layers.{attn}."
    out = {"mtp.fc.weight": (H, 2 * H), "mtp.pre_fc_norm_embedding.weight": (H,),
           "mtp.pre_fc_norm_hidden.weight": (H,), "mtp.norm.weight": (H,)}
    for n, s in shapes.items():
        if not n.startswith(p):
            continue
        rest = n[len(p):]
        if rest == "mlp.experts.gate_up_proj":
            E, I2, _ = s
            for e in range(E):
                out[f"mtp.layers.0.mlp.experts.{e}.gate_proj.weight"] = (I2 // 2, H)
                out[f"mtp.layers.0.mlp.experts.{e}.up_proj.weight"] = (I2 // 2, H)
        elif rest == "mlp.experts.down_proj":
            E, _, I = s
            for e in range(E):
                out[f"mtp.layers.0.mlp.experts.{e}.down_proj.weight"] = (H, I)
        else:
            out["mtp.layers.0." + rest] = s
    return out


def draw(name, shape, gen):
    """One tensor in bf16, drawn as transformers' _init_weights would (then norms and decays jittered)."""
    leaf = name.rsplit(".", 1)[-1]
    if name.endswith("linear_attn.norm.weight"):             # gated RMSNorm: weight multiplies directly
        return (1 + 0.1 * torch.randn(shape, generator=gen)).to(torch.bfloat16)
    if "norm" in name and leaf == "weight" and len(shape) == 1:
        if name.startswith("model.visual."):                  # LayerNorm
            return (1 + 0.1 * torch.randn(shape, generator=gen)).to(torch.bfloat16)
        return (0.1 * torch.randn(shape, generator=gen)).to(torch.bfloat16)   # (1 + w) RMSNorm
    if leaf == "bias":
        return torch.zeros(shape, dtype=torch.bfloat16)
    if leaf == "dt_bias":
        return (1 + 0.1 * torch.randn(shape, generator=gen)).to(torch.bfloat16)
    if leaf == "A_log":
        return torch.empty(shape).uniform_(0.01, 16, generator=gen).log_().to(torch.bfloat16)
    out = torch.empty(shape, dtype=torch.bfloat16)
    flat = out.view(shape[0], -1)
    for i in range(0, shape[0], 16):                          # in slices: no full-size f32 temporary
        flat[i:i + 16] = (0.02 * torch.randn((min(16, shape[0] - i), flat.shape[1]), generator=gen)).to(torch.bfloat16)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vision-depth", type=int, default=27)
    ap.add_argument("--no-mtp", action="store_true")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--verify", action="store_true", help="load with transformers (bf16) and generate 4 tokens")
    a = ap.parse_args()
    if not 1 <= a.layers <= 40:
        sys.exit("--layers must be in 1...40")
    cfg = real_config(a.layers, a.vision_depth)
    shapes = meta_shapes(cfg)
    H = cfg["text_config"]["hidden_size"]
    mtp = {} if a.no_mtp else mtp_shapes(shapes, H)
    groups = [("ends", [n for n in shapes if not n.startswith(("model.language_model.layers.", "model.visual."))])]
    groups += [(f"layer {i}", [n for n in shapes if n.startswith(f"model.language_model.layers.{i}.")]) for i in range(a.layers)]
    groups.append(("vision", [n for n in shapes if n.startswith("model.visual.")]))
    if mtp:
        groups.append(("mtp", list(mtp)))
    shapes.update(mtp)

    tmp = a.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    gen = torch.Generator().manual_seed(a.seed)
    weight_map, total = {}, 0
    for k, (what, names) in enumerate(groups):
        t0 = time.time()
        fname = f"model.safetensors-{k + 1:05d}-of-{len(groups):05d}.safetensors"
        tensors = {n: draw(n, shapes[n], gen) for n in names}
        size = sum(t.numel() * 2 for t in tensors.values())
        save_file(tensors, os.path.join(tmp, fname), metadata={"format": "pt"})
        del tensors
        weight_map.update({n: fname for n in names})
        total += size
        print(f"{fname}: {what}, {len(names)} tensors, {size / 1e9:.3f} GB ({time.time() - t0:.0f} s)", flush=True)
    with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    with open(os.path.join(tmp, "tokenizer.json"), "wb") as f:
        f.write(subprocess.run(["zstd", "-dc", TOKENIZER], check=True, capture_output=True).stdout)
    shutil.rmtree(a.out, ignore_errors=True)
    os.rename(tmp, a.out)
    text = sum(torch.Size(s).numel() for n, s in shapes.items() if n.startswith(("model.language_model.", "lm_head.")))
    print(f"{a.out}: {total / 1e9:.3f} GB in {len(groups)} shards; text model {text:,} parameters "
          f"({a.layers} of 40 layers: {cfg['text_config']['layer_types']})")
    if a.verify:
        verify(a.out, shapes)


def verify(d, shapes):
    t0 = time.time()
    model, info = Qwen3_5MoeForConditionalGeneration.from_pretrained(d, dtype=torch.bfloat16, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k != "unexpected_keys"}
    unexpected = set(info.get("unexpected_keys") or [])
    if bad or any(not k.startswith("mtp.") for k in unexpected):
        sys.exit(f"verify: transformers did not load the layout: {bad} unexpected={sorted(unexpected)[:5]}")
    held = model.state_dict()
    for n, s in shapes.items():
        if not n.startswith("mtp.") and tuple(held[n].shape) != s:
            sys.exit(f"verify: {n} is {tuple(held[n].shape)} in transformers, {s} in the files")
    mtp = sum(1 for n in shapes if n.startswith("mtp."))
    print(f"verify: transformers loaded {len(held)} tensors ({time.time() - t0:.0f} s), every text and vision tensor "
          f"from the files; the {mtp} mtp.* tensors are left unread (its _keys_to_ignore_on_load_unexpected)")
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([[9707, 11, 1879, 0, 576]]), max_new_tokens=4, do_sample=False)
    print("verify: generate ->", out[0].tolist())


if __name__ == "__main__":
    main()
