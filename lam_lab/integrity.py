"""Content checksums of model and checkpoint payloads, and a readable diff of two model descriptions."""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

KEY = "checksum"  # payload key holding "sha256:<hex>" of everything else in the payload


def digest(obj: Any) -> str:
    """``sha256:<hex>`` of a nested payload (dicts, lists, tensors, numbers, strings), its ``checksum`` key left out."""
    h = hashlib.sha256()
    _feed(h, obj, top=True)
    return "sha256:" + h.hexdigest()


def _feed(h: "hashlib._Hash", obj: Any, top: bool = False) -> None:
    import torch

    if isinstance(obj, Mapping):
        h.update(b"{")
        for key in sorted(obj, key=str):
            if top and key == KEY:
                continue
            h.update(repr(key).encode() + b":")
            _feed(h, obj[key])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    else:  # str, int, float, bool, None: repr is exact (floats round-trip) and type-tagged
        h.update(f"{type(obj).__name__}:{obj!r}".encode())


def seal(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its content checksum added under ``checksum``."""
    payload = dict(payload)
    payload[KEY] = digest(payload)
    return payload


def verify(payload: Mapping[str, Any]) -> str | None:
    """None when the payload's checksum matches (or it has none: files from before checksums); else the problem."""
    want = payload.get(KEY)
    if want is None:
        return None
    got = digest(payload)
    if got != want:
        return (f"content checksum mismatch (stored {str(want)[:19]}…, computed {got[:19]}…): "
                "the file was corrupted (flipped or lost bytes) after it was written")
    return None


def describe_mismatch(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Readable differences between two model descriptions ``{"type_map": [...], "config": {...}, "heads": [...]}``."""
    out = []
    a, b = list(saved.get("type_map") or []), list(current.get("type_map") or [])
    if a and b and a != b:
        how = "the same elements in another order" if sorted(a) == sorted(b) else "other elements"
        out.append(f"type map {a} in the file vs {b} here ({how})")
    ca, cb = _plain(saved.get("config") or {}), _plain(current.get("config") or {})
    if ca and cb:
        diff = [f"{k} {ca.get(k)!r} vs {cb.get(k)!r}" for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)]
        if diff:
            more = " …" if len(diff) > 8 else ""
            out.append("model size/config differs (file vs here): " + ", ".join(diff[:8]) + more)
    return out


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (a config read back from a file has lists where the code has tuples)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
