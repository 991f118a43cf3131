"""Converts a reference CRATE PyTorch checkpoint (.pth/.pt) to a Crate safetensors file.

    /usr/bin/python3 scripts/reference/convert_pth.py CHECKPOINT.pth OUT.safetensors [--heads 6] [--channels 3]
                     [--image-height H --image-width W] [--classes-file names.txt]

The architecture is read from the tensor shapes (dim, depth, patch, grid, classes); the head count cannot be,
so it defaults to the reference preset with the same width (384: 6, 576: 12, 768: 12, 1024: 16). Keys saved
from data-parallel training ("module." prefix) are accepted. Only tensors are read: the file is loaded with
weights_only where the installed torch supports it.
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from crate_reference import write_safetensors  # noqa: E402

HEADS_BY_WIDTH = {384: 6, 576: 12, 768: 12, 1024: 16}
PRESET_BY_SHAPE = {(384, 12, 6): "tiny", (576, 12, 12): "small", (768, 12, 12): "base", (1024, 24, 16): "large"}


def load_state_dict(path):
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        checkpoint = torch.load(path, map_location="cpu")
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(checkpoint, dict) and key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict):
        raise SystemExit(f"{path}: expected a state dict, found {type(checkpoint).__name__}")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in checkpoint.items() if torch.is_tensor(v)}


def infer_config(sd, heads, channels, image_height, image_width):
    dim = sd["cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("transformer.layers."))
    inner = sd["transformer.layers.0.0.fn.qkv.weight"].shape[0]
    heads = heads or HEADS_BY_WIDTH.get(dim)
    if not heads:
        raise SystemExit(f"width {dim} matches no preset: pass --heads")
    patch_dim = sd["to_patch_embedding.2.weight"].shape[1]
    patch = math.isqrt(patch_dim // channels)
    if patch * patch * channels != patch_dim:
        raise SystemExit(f"patch vector length {patch_dim} is not p*p*{channels}: pass --channels")
    patches = sd["pos_embedding"].shape[1] - 1
    if image_height is None:
        grid = math.isqrt(patches)
        if grid * grid != patches:
            raise SystemExit(f"{patches} patches do not form a square grid: pass --image-height and --image-width")
        image_height = image_width = grid * patch
    return dict(dim=dim, depth=depth, heads=heads, dim_head=inner // heads, image_height=image_height,
                image_width=image_width, patch_size=patch, channels=channels,
                num_classes=sd["mlp_head.1.weight"].shape[0],
                preset=PRESET_BY_SHAPE.get((dim, depth, heads), "custom"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--heads", type=int)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--image-height", type=int)
    parser.add_argument("--image-width", type=int)
    parser.add_argument("--pool", choices=["cls", "mean"], default="cls")
    parser.add_argument("--classes-file", help="one class name per line")
    args = parser.parse_args()
    sd = load_state_dict(args.checkpoint)
    config = infer_config(sd, args.heads, args.channels, args.image_height, args.image_width or args.image_height)
    config["pool"] = args.pool
    if args.classes_file:
        with open(args.classes_file, encoding="utf-8") as f:
            config["class_names"] = [line.strip() for line in f if line.strip()]
    write_safetensors(args.out, sd, {"crate.config": json.dumps(config), "converted_from": os.path.basename(args.checkpoint)})
    print(f"wrote {args.out}: {len(sd)} tensors, {json.dumps(config)}")


if __name__ == "__main__":
    main()
