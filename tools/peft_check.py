#!/usr/bin/env python3
"""Loads an adapter exported by the workbench with the real Hugging Face PEFT library (issue 14 item 3).

Loads the tiny llava-hf fixture model (test/fixtures/hf-llava-tiny/model) with transformers, puts the adapter
on it with PeftModel.from_pretrained, asserts that peft found every key of the adapter file and wrapped no
module the file has no weights for (no missing, no unexpected keys), that the weights it loaded are the
file's, and that its logits for the fixture's fixed input match ours (written by
test/unit/peft-check-logits.test.ts to test-results/peft-check/ours.json) within 1e-4. Prints the figures.

Needs torch, transformers, peft and safetensors (the lent GPU machine has them; CPU is enough, no network).
Usage: npx vitest run test/unit/peft-check-logits.test.ts   # writes test-results/peft-check/
       python3 tools/peft_check.py [--dir test-results/peft-check] [--model test/fixtures/hf-llava-tiny/model]
Exit status 0 when every check passes, 1 otherwise.
"""
import argparse
import json
import os
import sys

import torch
import transformers
import peft
from peft import PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import LlavaForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-4


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(ROOT, "test-results", "peft-check"), help="folder with adapter/ and ours.json")
    ap.add_argument("--model", default=os.path.join(ROOT, "test", "fixtures", "hf-llava-tiny", "model"))
    ap.add_argument("--io", default=os.path.join(ROOT, "test", "fixtures", "hf-llava-tiny", "io.safetensors"))
    args = ap.parse_args()
    adapter_dir = os.path.join(args.dir, "adapter")
    ours_path = os.path.join(args.dir, "ours.json")
    for p in (adapter_dir, ours_path, args.model, args.io):
        if not os.path.exists(p):
            print(f"{p}: missing (run `npx vitest run test/unit/peft-check-logits.test.ts` first)", file=sys.stderr)
            return 1
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")

    torch.manual_seed(0)
    base = LlavaForConditionalGeneration.from_pretrained(args.model, torch_dtype=torch.float32).eval()
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=False).eval()

    # What the file holds against what peft made of it: the adapter's state dict as peft saves it has the
    # same key names as adapter_model.safetensors exactly when nothing is missing or unexpected.
    file_sd = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    model_sd = get_peft_model_state_dict(model)
    missing = sorted(set(model_sd) - set(file_sd))
    unexpected = sorted(set(file_sd) - set(model_sd))
    mismatched = sorted(k for k in set(file_sd) & set(model_sd) if not torch.equal(file_sd[k].float(), model_sd[k].float().cpu()))
    print(f"adapter keys: {len(file_sd)} in the file, {len(model_sd)} in the loaded model; "
          f"missing {len(missing)}, unexpected {len(unexpected)}, values differing {len(mismatched)}")
    for name, keys in (("missing", missing), ("unexpected", unexpected), ("differing", mismatched)):
        for k in keys[:10]:
            print(f"  {name}: {k}")

    io = load_file(args.io)
    with open(ours_path) as f:
        ours = json.load(f)
    with torch.no_grad():
        out = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"], pixel_values=io["pixel_values"])
        logits = out.logits.float()
        with model.disable_adapter():
            base_logits = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"], pixel_values=io["pixel_values"]).logits.float()
    ours_t = torch.tensor(ours["logits"], dtype=torch.float32).reshape(logits.shape)
    diff = (logits - ours_t).abs().max().item()
    moved = (logits - base_logits).abs().max().item()
    print(f"logits {list(logits.shape)}: max |peft - ours| = {diff:.3e} (tolerance {TOLERANCE:.0e}); "
          f"the adapter moves peft's logits by up to {moved:.4f} (ours: {ours['maxAbsLoraDelta']:.4f})")

    ok = not missing and not unexpected and not mismatched and diff <= TOLERANCE and moved > 1e-2
    print("PEFT check passed" if ok else "PEFT check FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
