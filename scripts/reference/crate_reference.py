"""An independent PyTorch implementation of CRATE, written from docs/../shared/crate-architecture.md.

It exists to check Crate's TorchSharp model (test fixtures), and to carry weights between Crate and
PyTorch (safetensors with the reference key names). It uses only torch and the standard library, so it
runs with Debian's python3-torch.
"""
import json
import struct

import torch
from torch import nn
import torch.nn.functional as F


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x))


class SubspaceAttention(nn.Module):
    """MSSA: one projection is query, key and value."""

    def __init__(self, dim, heads, dim_head):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.qkv = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(0.0))
        self.last_attention = None

    def forward(self, x):
        b, n, _ = x.shape
        w = self.qkv(x).reshape(b, n, self.heads, self.dim_head).permute(0, 2, 1, 3)
        scores = torch.einsum("bhid,bhjd->bhij", w, w) / (self.dim_head ** 0.5)
        attention = scores.softmax(dim=-1)
        self.last_attention = attention
        mixed = torch.einsum("bhij,bhjd->bhid", attention, w)
        return self.to_out(mixed.permute(0, 2, 1, 3).reshape(b, n, self.heads * self.dim_head))


class SparseCoding(nn.Module):
    """ISTA, the three-product form exactly as specified (no folding), no residual."""

    def __init__(self, dim, eta=0.1, lam=0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.kaiming_uniform_(self.weight)
        self.eta = eta
        self.lam = lam

    def forward(self, x):
        x1 = F.linear(x, self.weight)
        grad_1 = F.linear(x1, self.weight.t())
        grad_2 = F.linear(x, self.weight.t())
        return F.relu(x + self.eta * (grad_2 - grad_1) - self.eta * self.lam)


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([PreNorm(dim, SubspaceAttention(dim, heads, dim_head)), PreNorm(dim, SparseCoding(dim))])
            for _ in range(depth))

    def forward(self, x):
        for attend, sparsify in self.layers:
            x = attend(x) + x
            x = sparsify(x)
        return x


class Patchify(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, img):
        b, c, h, w = img.shape
        p = self.p
        x = img.reshape(b, c, h // p, p, w // p, p)
        x = x.permute(0, 2, 4, 3, 5, 1)  # b, gh, gw, p1, p2, c: channel fastest
        return x.reshape(b, (h // p) * (w // p), p * p * c)


class Crate(nn.Module):
    def __init__(self, image_height, image_width, patch_size, num_classes, dim, depth, heads, dim_head,
                 channels=3, pool="cls"):
        super().__init__()
        patch_dim = channels * patch_size * patch_size
        n = (image_height // patch_size) * (image_width // patch_size)
        self.to_patch_embedding = nn.Sequential(
            Patchify(patch_size), nn.LayerNorm(patch_dim), nn.Linear(patch_dim, dim), nn.LayerNorm(dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, n + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = Transformer(dim, depth, heads, dim_head)
        self.pool = pool
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    @staticmethod
    def from_config(cfg):
        return Crate(cfg["image_height"], cfg["image_width"], cfg["patch_size"], cfg["num_classes"], cfg["dim"],
                     cfg["depth"], cfg["heads"], cfg["dim_head"], cfg["channels"], cfg.get("pool", "cls"))

    def forward(self, img):
        x = self.to_patch_embedding(img)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embedding
        x = self.transformer(x)
        x = x.mean(dim=1) if self.pool == "mean" else x[:, 0]
        return self.mlp_head(x)


def write_safetensors(path, tensors, metadata=None):
    """Writes a dict of float32 tensors in the safetensors layout (header length, JSON header, raw data)."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """Reads a safetensors file of F32 tensors: (dict name -> tensor, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {entry['dtype']}, only F32 is handled here")
        begin, end = entry["data_offsets"]
        values = torch.frombuffer(bytearray(raw[base + begin:base + end]), dtype=torch.float32)
        tensors[name] = values.reshape(entry["shape"]).clone()
    return tensors, metadata
