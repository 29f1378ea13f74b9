"""JSON that browsers and other tools read: NaN and ±inf become null, tuples become lists."""

from __future__ import annotations

import json
import math
from typing import Any


def json_safe(x: Any) -> Any:
    """``x`` with every non-finite float replaced by None, recursively through dicts, lists and tuples."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def dumps(obj: Any) -> str:
    """Indented JSON of :func:`json_safe` ``obj``."""
    return json.dumps(json_safe(obj), indent=2)
