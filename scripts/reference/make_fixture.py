"""Writes the model fixture used by Crate's tests: random weights, an input batch, and the logits the
independent PyTorch implementation computes for them.

    /usr/bin/python3 scripts/reference/make_fixture.py tests/Crate.Training.Tests/Fixtures
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from crate_reference import Crate, write_safetensors  # noqa: E402

FIXTURES = [
    # name, config: a cls-pooled RGB model with several heads, and a mean-pooled grayscale one.
    ("crate_rgb_cls", dict(dim=32, depth=3, heads=4, dim_head=8, image_height=12, image_width=8, patch_size=4,
                           channels=3, num_classes=5, pool="cls", preset="custom")),
    ("crate_gray_mean", dict(dim=24, depth=2, heads=3, dim_head=8, image_height=8, image_width=8, patch_size=2,
                             channels=1, num_classes=3, pool="mean", preset="custom")),
]


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(20231)
    for name, cfg in FIXTURES:
        model = Crate.from_config(cfg).eval()
        with torch.no_grad():
            # LayerNorm affine parameters start at 1/0; randomise them so the test sees them used.
            for key, p in model.named_parameters():
                if "norm" in key or key.startswith("mlp_head.0") or key.startswith("to_patch_embedding.1") \
                        or key.startswith("to_patch_embedding.3"):
                    p.add_(0.1 * torch.randn_like(p))
            images = torch.randn(3, cfg["channels"], cfg["image_height"], cfg["image_width"])
            logits = model(images)
        write_safetensors(os.path.join(out_dir, f"{name}.weights.safetensors"), dict(model.named_parameters()),
                          {"crate.config": json.dumps(cfg)})
        write_safetensors(os.path.join(out_dir, f"{name}.io.safetensors"), {"images": images, "logits": logits})
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, logits {list(logits.shape)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/Crate.Training.Tests/Fixtures")
