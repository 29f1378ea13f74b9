"""DeePMD-kit side of model_speed.py: runs in benchmarks/.venv-deepmd (not lam_lab's venv), prints one JSON line.

Usage: .venv-deepmd/bin/python _deepmd_side.py SPEC.json  -> stdout line "DEEPMD_RESULT {...}"
SPEC: {"threads", "warmup", "repeat", "models": {name: model_params}, "structures": {name: npz path},
"pairs": [[model, structure], ...]}. Each npz holds coord [nf, n, 3] (Å), atype [nf, n], box [nf, 9] or none.
Times energy + forces (+ virial, which DeePMD-kit's forward always returns with a box) of one call.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time


def count_flops(fn) -> int:
    """FLOPs of one call of ``fn`` (forward and autograd backward), from torch's flop_counter registry.

    A bare dispatch mode rather than FlopCounterMode: the latter's module hooks break inside
    DeePMD-kit's autograd.grad call. Ops outside the registry (elementwise) count zero, as there.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class _Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            rule = flop_registry.get(func._overloadpacket)
            if rule is not None:
                _Count.total += int(rule(*args, **kwargs, out_val=out))
            return out

    with _Count():
        fn()
    return _Count.total


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    n = int(spec["threads"])
    # DeePMD-kit reads these at import time to set torch's thread pools
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["DP_INTRA_OP_PARALLELISM_THREADS"] = str(n)
    os.environ["DP_INTER_OP_PARALLELISM_THREADS"] = "1"
    import numpy as np
    import torch

    torch.set_num_threads(n)
    import deepmd
    from deepmd.pt.model.model import get_model

    try:
        from deepmd.pt.cxx_op import ENABLE_CUSTOMIZED_OP as custom_op
    except Exception:  # noqa: BLE001 - only informative
        custom_op = None
    torch.set_num_threads(n)
    out = {"deepmd_version": deepmd.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "custom_op": custom_op, "rows": []}
    models = {}
    for name, params in spec["models"].items():
        m = get_model(json.loads(json.dumps(params))).to("cpu")
        m.eval()
        models[name] = (m, sum(p.numel() for p in m.parameters()))
    for model_name, struct_name in spec["pairs"]:
        model, n_params = models[model_name]
        data = np.load(spec["structures"][struct_name])
        coord = torch.tensor(data["coord"], dtype=torch.float64)
        atype = torch.tensor(data["atype"], dtype=torch.int64)
        box = torch.tensor(data["box"], dtype=torch.float64) if "box" in data.files else None

        def call():
            return model(coord, atype, box)

        for _ in range(int(spec["warmup"])):
            call()
        times = []
        for _ in range(int(spec["repeat"])):
            t0 = time.perf_counter()
            res = call()
            times.append(time.perf_counter() - t0)
        try:
            flops = count_flops(call)
        except Exception as err:  # noqa: BLE001 - FLOPs are extra information
            flops = f"{type(err).__name__}: {err}"
        out["rows"].append({
            "model": model_name, "structure": struct_name, "atoms": int(atype.numel()), "params": n_params,
            "best_s": min(times), "median_s": statistics.median(times), "repeat": len(times), "flops": flops,
            "energy_finite": bool(torch.isfinite(res["energy"]).all()), "has_force": "force" in res,
        })
    print("DEEPMD_RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
