"""Loads weights written by Crate into the independent PyTorch implementation with strict key matching and
prints the logits for the images stored beside them, or compares them with expected logits.

    /usr/bin/python3 scripts/reference/check_crate_weights.py WEIGHTS.safetensors IO.safetensors

IO.safetensors holds "images" and "logits" (Crate's). Exits non-zero if max |diff| > 1e-4.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from crate_reference import Crate, read_safetensors  # noqa: E402

weights, metadata = read_safetensors(sys.argv[1])
config = json.loads(metadata["crate.config"])
model = Crate.from_config(config).eval()
model.load_state_dict(weights, strict=True)
io, _ = read_safetensors(sys.argv[2])
with torch.no_grad():
    logits = model(io["images"])
diff = (logits - io["logits"]).abs().max().item()
print(json.dumps({"max_abs_diff": diff, "tensors": len(weights)}))
sys.exit(0 if diff <= 1e-4 else 1)
