#!/usr/bin/env python3
"""Makes the tiny Hugging Face LLaVA parity fixture (issue: LLaVA-family backbone, parity with HF).

A random LlavaForConditionalGeneration (CLIP ViT 2 layers d 32, image 28 px, patch 14; Llama 2 layers
d 64, 4 heads, 2 KV heads) is saved with transformers' own save_pretrained, together with fixed inputs and
the logits transformers computes for them, with and without a LoRA adapter made by peft. Our TypeScript
forward pass must reproduce these logits (max |delta| <= 1e-4, fp32).

Needs torch, transformers, peft and safetensors (the GPU machine has them; no network is used).
Usage: python3 tools/hf_llava_fixture.py OUT_DIR
"""
import json
import os
import sys

import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

SEED = 1234
VOCAB = 256
IMAGE_TOKEN = 255  # last vocab id; the processor would expand it to one token per image patch
IMAGE_SIZE = 28
PATCH = 14


def build_model() -> LlavaForConditionalGeneration:
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=PATCH, projection_dim=32, hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )
    text = LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rms_norm_eps=1e-6, rope_theta=10000.0, hidden_act="silu", tie_word_embeddings=False,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN,
        projector_hidden_act="gelu", vision_feature_layer=-2, vision_feature_select_strategy="default",
    )
    torch.manual_seed(SEED)
    model = LlavaForConditionalGeneration(config).eval()
    # Random init leaves some tensors at exact zeros/ones; perturb all so every weight matters for parity.
    with torch.no_grad():
        g = torch.Generator().manual_seed(SEED + 1)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return model


def fixed_inputs():
    g = torch.Generator().manual_seed(SEED + 2)
    pixel_values = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    n_patches = (IMAGE_SIZE // PATCH) ** 2  # 'default' strategy drops CLS: one token per patch
    text_ids = torch.randint(3, IMAGE_TOKEN, (12,), generator=g)
    input_ids = torch.cat([
        torch.tensor([1]), torch.full((n_patches,), IMAGE_TOKEN), text_ids,
    ]).unsqueeze(0)
    attention_mask = torch.ones_like(input_ids)
    return input_ids, attention_mask, pixel_values


def legacy_keys(state: dict) -> dict:
    """The pre-4.52 llava-hf layout (language_model.model.layers..., vision_tower.vision_model...)."""
    out = {}
    for k, v in state.items():
        if k.startswith("model.language_model."):
            k = "language_model.model." + k[len("model.language_model."):]
        elif k.startswith("model.vision_tower."):
            k = "vision_tower." + k[len("model.vision_tower."):]
        elif k.startswith("model.multi_modal_projector."):
            k = "multi_modal_projector." + k[len("model.multi_modal_projector."):]
        elif k == "lm_head.weight":
            k = "language_model.lm_head.weight"
        out[k] = v.contiguous()
    return out


def main() -> None:
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    model = build_model()
    input_ids, attention_mask, pixel_values = fixed_inputs()
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values).logits

    model_dir = os.path.join(out_dir, "model")
    model.save_pretrained(model_dir, safe_serialization=True)
    state = {k: v for k, v in model.state_dict().items()}
    layout = "current" if any(k.startswith("model.language_model.") for k in state) else "legacy"
    if layout == "current":
        legacy_dir = os.path.join(out_dir, "model-legacy-keys")
        os.makedirs(legacy_dir, exist_ok=True)
        save_file(legacy_keys(state), os.path.join(legacy_dir, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(model_dir, "config.json")) as f, open(os.path.join(legacy_dir, "config.json"), "w") as g:
            g.write(f.read())

    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], bias="none")
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        g = torch.Generator().manual_seed(SEED + 3)
        for name, p in peft_model.named_parameters():
            if "lora_" in name:  # lora_B starts at zero; give it values so the adapter changes the logits
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        logits_lora = peft_model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values).logits
    peft_model.save_pretrained(os.path.join(out_dir, "lora"), safe_serialization=True)

    save_file(
        {
            "input_ids": input_ids.to(torch.int64).contiguous(),
            "attention_mask": attention_mask.to(torch.int64).contiguous(),
            "pixel_values": pixel_values.contiguous(),
            "logits": logits.float().contiguous(),
            "logits_lora": logits_lora.float().contiguous(),
        },
        os.path.join(out_dir, "io.safetensors"),
        metadata={"format": "pt"},
    )
    info = {
        "made_by": "tools/hf_llava_fixture.py",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": __import__("peft").__version__,
        "saved_key_layout": layout,
        "seed": SEED,
        "image_token_index": IMAGE_TOKEN,
        "lora": {"r": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]},
        "max_abs_logit": float(logits.abs().max()),
        "max_abs_lora_delta": float((logits_lora - logits).abs().max()),
    }
    with open(os.path.join(out_dir, "fixture.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
