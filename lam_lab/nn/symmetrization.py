"""The symmetrisation operator symm(x_j, y_j) (Eq. 18–20), batched over atoms."""

from __future__ import annotations

from torch import Tensor


def symm_moment(x: Tensor, y: Tensor, w: Tensor | None, n_max: float | Tensor) -> Tensor:
    """Eq. 19: p_αβ = (1/N^m) Σ_j w_ij x_{j,α} y_{j,β}, [N, A, B] from x [N,S,A], y [N,S,B], w [N,S].

    ``n_max`` is N^m: the padded neighbor count ``sel`` in the paper, or the data's mean neighbour count
    (ModelConfig.neighbor_norm="data"); a constant either way, so p is smooth when atoms enter.
    ``w=None`` means y already carries the switch (callers that reuse w·y across layers).
    """
    wy = y if w is None else w[..., None] * y
    # (wyᵀ x)ᵀ rather than xᵀ wy: the same numbers, ~2× faster batched GEMM shapes on CPU
    return ((wy.transpose(1, 2) @ x) * (1.0 / n_max)).transpose(1, 2)


def symm_split(p: Tensor, axis: int) -> Tensor:
    """Eq. 20: p^< = the first ``axis`` rows of p along α, [N, axis, B]."""
    if axis > p.shape[1]:
        raise ValueError(f"axis_neuron {axis} is larger than the feature width {p.shape[1]}")
    return p[:, :axis, :]


def symm_contract(p: Tensor, p_lt: Tensor) -> Tensor:
    """Eq. 18: flatten_αγ(Σ_β p_αβ p^<_γβ), [N, A·axis] (rotation invariant since y·y is)."""
    n = p.shape[0]
    return (p @ p_lt.transpose(1, 2)).reshape(n, -1)


def symm(x: Tensor, y: Tensor, w: Tensor | None, n_max: float | Tensor, axis: int) -> Tensor:
    """Eq. 18–20 together: symm(x_j, y_j) for invariant x [N,S,A] and equivariant y [N,S,B] → [N, A·axis]."""
    p = symm_moment(x, y, w, n_max)
    return symm_contract(p, symm_split(p, axis))
