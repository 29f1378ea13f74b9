"""The repformer layer (Eq. 24–32) with the smooth softmaxes of Eq. 35–36.

Shapes: f [N, n1] single-atom, g [N, S, n2] invariant pair, h [N, S, 3] equivariant pair, w [N, S]
switch of the repformer cutoff, ``index`` [N, S] global neighbor indices (-1 = padding, where w = 0).

Differences from DeePMD-kit's RepformerLayer (we follow the paper):
- residual updates average their terms, (x + Σ updates)/√(1 + #updates) — the paper's 1/√3 (Eq. 24)
  and 1/√4 (Eq. 29) when every term is on — instead of DeePMD's learnable "res_residual" scalings;
- the convolution and both symmetrisations enter the single-atom MLP through f̃ (Eq. 25) rather than
  being added separately (DeePMD's ``g1_out_conv``/``g1_out_mlp``);
- symmetrisation divides by N^m (Eq. 19), not √N^m (``use_sqrt_nnei``), and not by an extra 3;
- the gated attention has only the h·h gate inside the softmax (Eq. 32): no second h·h/√3 factor
  after it and no LayerNorm on its output.
h is not updated (the paper's Eq. 33 is described but not used in DPA-2).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lam_lab.nn.mlp import Dense, activation
from lam_lab.nn.repinit import gather_neighbors
from lam_lab.nn.symmetrization import symm


def padded_softmax(z: Tensor, n_pad: int = 0, pad_logit: float = -20.0) -> Tensor:
    """softmax over the last axis as if ``n_pad`` more entries with logit ``pad_logit`` were there.

    The model trims neighbor slots that are padding in the whole batch; this keeps their share of
    the normaliser, so results do not depend on the trimming.
    """
    if n_pad == 0:
        return torch.softmax(z, dim=-1)
    m = z.amax(dim=-1, keepdim=True).clamp(min=pad_logit).detach()  # any constant works; this one is stable
    e = torch.exp(z - m)
    return e / (e.sum(dim=-1, keepdim=True) + n_pad * torch.exp(pad_logit - m))


def smooth_softmax_star(x: Tensor, w: Tensor, shift: float = 20.0, n_pad: int = 0) -> Tensor:
    """Eq. 35: softmax*(x_ij) = w_ij · softmax_j(w_ij (x_ij + s*) − s*) over the last axis (all N^m slots).

    Padded slots (w = 0) get the logit −s*, exactly like a neighbor sitting on the cutoff, so the
    normaliser does not jump when an atom enters. ``n_pad`` counts padded slots trimmed away.
    """
    return w * padded_softmax(w * (x + shift) - shift, n_pad, -shift)


def smooth_softmax_dagger(y: Tensor, ww: Tensor, shift: float = 20.0, n_pad: int = 0) -> Tensor:
    """Eq. 36: softmax†(y_ijk) = w_ij w_ik · softmax_k(w_ij w_ik (y_ijk + s†) − s†); ``ww`` = w_ij w_ik."""
    return ww * padded_softmax(ww * (y + shift) - shift, n_pad, -shift)


def conv_term(g: Tensor, f_hat_j: Tensor, w: Tensor, n_max: float | Tensor) -> Tensor:
    """Eq. 25, second block: (1/N^m) Σ_j w_ij g_ij ⊙ f̂_j, [N, n2] (f̂ = linear(f) gathered at j)."""
    return torch.einsum("ns,nsc->nc", w, g * f_hat_j) / n_max


def residual_average(terms: list[Tensor]) -> Tensor:
    """(Σ terms)/√len(terms): the 1/√3 of Eq. 24 and 1/√4 of Eq. 29 when all terms are present."""
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out / math.sqrt(len(terms))


class LocalAttention(nn.Module):
    """Eq. 26–28: loc_attn(f_i) = linear_{β,η→n1}(Σ_{j,α} B^η_ij f_{j,α} V̂^η_{αβ}), B = softmax*(q̂_i·k̂_j/√d̂)."""

    def __init__(self, n1: int, hidden: int, heads: int, shift: float = 20.0, dtype=None):
        super().__init__()
        self.heads, self.hidden, self.shift = heads, hidden, shift
        self.q = Dense(n1, heads * hidden, bias=False, dtype=dtype)  # Q̂ (Eq. 27)
        self.k = Dense(n1, heads * hidden, bias=False, dtype=dtype)  # K̂ (Eq. 27)
        self.v = nn.Parameter(torch.randn(heads, n1, n1, dtype=dtype) / math.sqrt(n1))  # V̂ (Eq. 26)
        self.out = Dense(heads * n1, n1, dtype=dtype)  # linear_{β,η→n1}

    def attention_map(self, f: Tensor, w: Tensor, index: Tensor, n_pad: int = 0) -> Tensor:
        """Eq. 27–28: B^η_ij, [N, heads, S]."""
        n, hd = f.shape[0], (self.heads, self.hidden)
        q = self.q(f).view(n, *hd)
        k = gather_neighbors(self.k(f), index).view(n, -1, *hd)  # keys per atom, then gathered
        x = torch.einsum("nhd,nshd->nhs", q, k) / math.sqrt(self.hidden)
        return smooth_softmax_star(x, w[:, None, :], self.shift, n_pad)

    def forward(self, f: Tensor, f_j: Tensor, w: Tensor, index: Tensor, n_pad: int = 0) -> Tensor:
        """Eq. 26: the attention update of f, [N, n1]."""
        b = self.attention_map(f, w, index, n_pad)
        pooled = b @ f_j  # Σ_j B_ij f_j, [N, heads, n1]
        values = torch.einsum("nha,hab->nhb", pooled, self.v)
        return self.out(values.reshape(f.shape[0], -1))


class GatedAttention(nn.Module):
    """Eq. 30–32: gated_attn(g_ij, h) = linear_{β,η→n2}(Σ_{k,α} A^η_ijk g_{ik,α} V^η_{αβ}).

    A^η_ijk = softmax†_k((q_ij·k_ik/√d)(h_ij·h_ik)); the h·h gate makes the map geometry-aware.
    """

    def __init__(self, n2: int, hidden: int, heads: int, shift: float = 20.0, dtype=None):
        super().__init__()
        self.heads, self.hidden, self.shift = heads, hidden, shift
        self.qk = Dense(n2, 2 * heads * hidden, bias=False, dtype=dtype)  # Q, K (Eq. 31)
        self.v = Dense(n2, heads * n2, bias=False, dtype=dtype)  # V (Eq. 30)
        self.out = Dense(heads * n2, n2, dtype=dtype)  # linear_{β,η→n2}

    def attention_map(self, g: Tensor, h: Tensor, w: Tensor, n_pad: int = 0) -> Tensor:
        """Eq. 31–32: A^η_ijk, [N, heads, S, S]."""
        n, s = g.shape[:2]
        qk = self.qk(g).view(n, s, 2, self.heads, self.hidden).permute(2, 0, 3, 1, 4)  # [2, N, H, S, d]
        y = (qk[0] @ qk[1].transpose(-1, -2)) / math.sqrt(self.hidden)
        y = y * (h @ h.transpose(-1, -2))[:, None]  # gate h_ij · h_ik
        ww = (w[:, :, None] * w[:, None, :])[:, None]
        return smooth_softmax_dagger(y, ww, self.shift, n_pad)

    def forward(self, g: Tensor, h: Tensor, w: Tensor, n_pad: int = 0) -> Tensor:
        """Eq. 30: the attention update of g, [N, S, n2]."""
        n, s, n2 = g.shape
        a = self.attention_map(g, h, w, n_pad)
        v = self.v(g).view(n, s, self.heads, n2).transpose(1, 2)  # [N, H, S, n2]
        out = (a @ v).transpose(1, 2).reshape(n, s, self.heads * n2)
        return self.out(out)


class RepformerLayer(nn.Module):
    """One repformer layer: f^{l+1} by Eq. 24–25 (+ Eq. 26–28), g^{l+1} by Eq. 29 (+ Eq. 30–32)."""

    def __init__(self, n1: int, n2: int, axis: int, sel: int, act: str = "tanh",
                 loc_attn: bool = False, loc_attn_heads: int = 4, loc_attn_hidden: int = 128,
                 g1g1: bool = False, g2_attn: bool = False, g2_attn_heads: int = 4, g2_attn_hidden: int = 32,
                 shift: float = 20.0, update_g: bool = True, dtype=None):
        super().__init__()
        if axis > min(n1, n2):
            raise ValueError(f"repformer axis_neuron {axis} exceeds g1/g2 width ({n1}, {n2})")
        self.n1, self.n2, self.axis, self.sel = n1, n2, axis, sel
        self.register_buffer("n_norm", torch.tensor(float(sel), dtype=dtype))  # N^m of Eq. 19/25 (see Repinit)
        self._act = activation(act)
        self.f_hat = Dense(n1, n2, bias=False, dtype=dtype)  # f̂_j = linear(f_j) (Eq. 25)
        self.f_mlp = Dense(n1 + n2 + n1 * axis + n2 * axis, n1, dtype=dtype)  # MLP(f̃) (Eq. 24)
        self.loc_attn = LocalAttention(n1, loc_attn_hidden, loc_attn_heads, shift, dtype) if loc_attn else None
        # the last layer's g is read by nobody: it gets no g update (and no unused parameters)
        self.has_g_update = update_g
        self.g_mlp = Dense(n2, n2, dtype=dtype) if update_g else None  # MLP(g) (Eq. 29)
        self.g1g1 = Dense(n1, n2, bias=False, dtype=dtype) if g1g1 and update_g else None  # linear_{n1→n2} (Eq. 29)
        self.g2_attn = GatedAttention(n2, g2_attn_hidden, g2_attn_heads, shift, dtype) if g2_attn and update_g else None

    def f_tilde(self, f: Tensor, f_j: Tensor, g: Tensor, wh: Tensor, w: Tensor, index: Tensor) -> Tensor:
        """Eq. 25: f̃_i = concat(f_i, (1/N^m)Σ_j w g_ij ⊙ f̂_j, symm(f_j, h_ij), symm(g_ij, h_ij)), [N, ·]."""
        conv = conv_term(g, gather_neighbors(self.f_hat(f), index), w, self.n_norm)
        s_fh = symm(f_j, wh, None, self.n_norm, self.axis)
        s_gh = symm(g, wh, None, self.n_norm, self.axis)
        return torch.cat([f, conv, s_fh, s_gh], dim=-1)

    def update_f(self, f: Tensor, f_j: Tensor, g: Tensor, wh: Tensor, w: Tensor, index: Tensor) -> Tensor:
        """Eq. 24: f^{l+1} = (f + MLP(f̃) + loc_attn(f))/√3 (without attention: /√2)."""
        terms = [f, self._act(self.f_mlp(self.f_tilde(f, f_j, g, wh, w, index)))]
        if self.loc_attn is not None:
            terms.append(self.loc_attn(f, f_j, w, index, self.sel - index.shape[1]))
        return residual_average(terms)

    def update_g(self, f: Tensor, f_j: Tensor, g: Tensor, h: Tensor, w: Tensor) -> Tensor:
        """Eq. 29: g^{l+1} = (g + MLP(g) + w_ij linear(f_i ⊙ f_j) + gated_attn(g, h))/√4 (absent terms dropped)."""
        terms = [g, self._act(self.g_mlp(g))]
        if self.g1g1 is not None:
            terms.append(w[..., None] * self.g1g1(f[:, None, :] * f_j))
        if self.g2_attn is not None:
            terms.append(self.g2_attn(g, h, w, self.sel - g.shape[1]))
        return residual_average(terms)

    def forward(self, f: Tensor, g: Tensor, h: Tensor, w: Tensor, wh: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """(f^{l+1}, g^{l+1}) (g unchanged in a layer built with ``update_g=False``).

        ``wh`` = w_ij h_ij is passed in because it is the same in every layer.
        """
        f_j = gather_neighbors(f, index)
        f_new = self.update_f(f, f_j, g, wh, w, index)
        g_new = self.update_g(f, f_j, g, h, w) if self.has_g_update else g
        return f_new, g_new
