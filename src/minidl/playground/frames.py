"""Frames: what the page draws, as one small JSON header and one binary buffer (base64 on the wire).

The buffer holds named sections, each a typed array at a 4-byte aligned offset; the header lists them as
``[name, dtype, offset, length]`` so the page reads them with ``Uint8Array`` / ``Float32Array`` views:

- ``output``: the network's output over the input plane, ``GRID × GRID`` bytes (row 0 at the top): a
  probability of class 1 (binary), a value in [-1, 1] (regression), or for several classes the argmax
  class followed by a second block with its probability;
- ``nodes``: every node's value (input features, hidden neurons, outputs) on a ``THUMB × THUMB`` grid, one
  byte each, as v / scale mapped to 0..255; ``scales`` has one float32 per node;
- ``weights``: every Linear's weight then bias (float32), in ``state_dict`` order;
- ``grad_norms``: the L2 norm of each Linear's weight gradient after the last step (float32);
- ``confusion``: the test split's confusion matrix (int32, rows = true class), classification only.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import torch

GRID, THUMB = 100, 25
STRIDE = GRID // THUMB


def quantize_signed(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(nodes, n)`` values -> bytes of v / scale in [-1, 1] mapped to 0..255, and each node's scale."""
    scale = values.abs().amax(1).clamp_min(1e-6)
    q = (values / scale[:, None] * 127.5 + 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return q, scale.to(torch.float32)


def quantize_unit(values: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] -> 0..255."""
    return (values.clamp(0, 1) * 255).round_().to(torch.uint8)


def pack(header: dict[str, Any], sections: list[tuple[str, torch.Tensor]]) -> str:
    """The SSE ``data`` line of a frame: ``{"h": header + section table, "b": base64 buffer}``."""
    parts, table, offset = [], [], 0
    for name, tensor in sections:
        data = tensor.detach().contiguous().cpu().numpy().tobytes()
        table.append([name, str(tensor.dtype).removeprefix("torch."), offset, tensor.numel()])
        pad = -len(data) % 4
        parts.append(data + b"\0" * pad)
        offset += len(data) + pad
    header = {**header, "sections": table}
    body = base64.b64encode(b"".join(parts)).decode("ascii")
    return json.dumps({"h": header, "b": body}, separators=(",", ":"))


def unpack(message: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The inverse of ``pack`` (tests and the benchmark read frames with it)."""
    obj = json.loads(message)
    raw = base64.b64decode(obj["b"])
    out = {}
    for name, dtype, offset, length in obj["h"]["sections"]:
        dt = getattr(torch, dtype)
        size = torch.empty((), dtype=dt).element_size()
        out[name] = (
            torch.frombuffer(bytearray(raw[offset : offset + length * size]), dtype=dt)
            if length
            else (torch.empty(0, dtype=dt))
        )
    return obj["h"], out
