"""Test helper: writes a reference-style PyTorch checkpoint (data-parallel "module." keys) of a small random
CRATE, plus an input and the logits PyTorch computes, so Crate can check the .pth -> safetensors route.

    /usr/bin/python3 scripts/reference/checkpoint_roundtrip.py OUT_DIR
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from crate_reference import Crate, write_safetensors  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(5)
model = Crate(image_height=16, image_width=16, patch_size=4, num_classes=4, dim=384, depth=2, heads=6, dim_head=64).eval()
torch.save({"model": {"module." + k: v for k, v in model.state_dict().items()}, "epoch": 3}, os.path.join(out, "reference.pth"))
images = torch.randn(2, 3, 16, 16)
with torch.no_grad():
    write_safetensors(os.path.join(out, "io.safetensors"), {"images": images, "logits": model(images)})
