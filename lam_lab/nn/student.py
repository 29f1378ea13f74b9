"""The distillation student: DPA-1 without attention (DeepPot-SE with a type embedding), one neighbor list.

D_i = concat(f⁰_i, symm(g_ij, r̃_ij)) with a two-body embedding g_ij = g(r_ij; Z_i, Z_j) and the
symmetrisation of Eq. 18–20. Two embeddings:

- ``"basis"`` (default): g_ij = Σ_k φ_k(r_ij) C[Z_i, Z_j, k, :] with K fixed cubic B-splines φ_k. This
  is the form a *compressed* DeePMD model evaluates (its tabulated embedding is piecewise polynomial
  too), but trained directly: because g is linear in C, the moment of Eq. 19 becomes
  p_i = C[Z_i]ᵀ · Σ_j w_ij φ(r_ij) ⊗ onehot(Z_j) ⊗ r̃_ij, so no per-neighbor network runs at all.
- ``"mlp"``: g^rt of Eq. 16 (an MLP of concat(f⁰_i, f⁰_j, s_ij)), i.e. the repinit block alone — the
  uncompressed DPA-1-without-attention; the same per-neighbor network cost as dpa2's repinit, so
  only ~2× cheaper than dpa2-small instead of ~6×.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor, nn

from lam_lab.nn import kernels
from lam_lab.nn.descriptor import Descriptor, register_descriptor
from lam_lab.nn.env_matrix import environment
from lam_lab.nn.repinit import Repinit
from lam_lab.nn.symmetrization import symm_contract, symm_split
from lam_lab.nn.type_embedding import TypeEmbedding

if TYPE_CHECKING:
    from lam_lab.potential import ModelConfig


def bspline_weights(r: Tensor, rcut: float, n_basis: int) -> tuple[Tensor, Tensor]:
    """Uniform cubic B-splines on [0, rcut] (Å): the 4 non-zero φ_k(r) and their k, each [N, S, 4].

    φ_k are C² and sum to 1, so g is C² in r (the switch is C² too); only 4 are non-zero at any r,
    which is what makes the student cheap.
    """
    n_int = n_basis - 3
    h = rcut / n_int
    x = (r / h).clamp(0.0, n_int - 1e-6)  # r ≥ rcut only happens where w = 0
    k = x.detach().floor()
    u = x - k
    u2 = u * u
    u3 = u2 * u
    v = 1.0 - u
    b0, b1, b3 = v * v * v * (1.0 / 6.0), 0.5 * u3 - u2 + 2.0 / 3.0, u3 * (1.0 / 6.0)
    b = torch.stack([b0, b1, 1.0 - b0 - b1 - b3, b3], dim=-1)  # the four sum to 1
    idx = k.long()[..., None] + torch.arange(4, device=r.device)
    return b, idx


class _PairMoments(torch.autograd.Function):
    """q_i[β, (Z_j,k)] = c_i Σ_j w(r_ij) φ_k(r_ij) r̃_ij,β (c_i = data scale / N^m), [4, N, T·K], with a
    hand-written first derivative.

    Autograd over ~20 per-neighbor ops is most of the student's cost, and ops on [..., 3] or [..., 4]
    inner axes are slow on CPU, so everything here runs component-major ([4, N·S]): forward keeps
    the four non-zero w·φ_k, their slopes and r̃, scatters the 16 products b_m r̃_β of each pair
    into the bin (i, Z_j, k_j) of its first spline, and sums the four bins' shifts; backward is
    the matching gather plus a few elementwise ops. When the caller asks for a graph of the
    gradient (training on forces, ``create_graph=True``), backward instead differentiates
    :func:`pair_moments_reference`, so second derivatives stay exact. On CPU, with the compiled
    kernel (:mod:`lam_lab.nn.kernels`), forward and first derivative are one fused loop per atom, and
    with ``exact_hessian=False`` the graph of the gradient is :class:`_PairMomentsGrad` (training).
    """

    @staticmethod
    def forward(ctx, rij: Tensor, mask: Tensor, rows: Tensor, scale: Tensor, rcut_smth: float, rcut: float,
                n_basis: int, n_rows: int, exact_hessian: bool = True) -> Tensor:
        consts = (rcut_smth, rcut, n_basis, n_rows)
        ctx.save_for_backward(rij, mask, rows, scale)
        ctx.consts = consts
        ctx.exact_hessian = exact_hessian
        ctx.kernel = kernels.pair_moments() if rij.device.type == "cpu" else None
        if ctx.kernel is not None:
            ctx.fast = None
            return ctx.kernel.moments_forward(rij, mask, rows, scale, *consts)
        q, ctx.fast = _moments_forward(rij, mask, rows, scale, *consts)
        return q

    @staticmethod
    def backward(ctx, grad_q: Tensor):
        nones = (None,) * 8
        if torch.is_grad_enabled():  # create_graph: a differentiable gradient
            rij, mask, rows, scale = ctx.saved_tensors
            if ctx.kernel is not None and not ctx.exact_hessian:
                return (_PairMomentsGrad.apply(grad_q, rij, mask, rows, scale, ctx.consts, ctx.kernel),) + nones
            with torch.enable_grad():
                q = pair_moments_reference(rij, mask, rows, scale, *ctx.consts)
                (grad,) = torch.autograd.grad(q, rij, grad_q, create_graph=True)
            return (grad,) + nones
        if ctx.kernel is not None:
            grad = ctx.kernel.moments_backward(grad_q, *ctx.saved_tensors, *ctx.consts)
        else:
            n, s = ctx.saved_tensors[1].shape
            grad = _moments_backward(grad_q, *ctx.fast, ctx.consts[2], n, s)
        return (grad,) + nones


class _PairMomentsGrad(torch.autograd.Function):
    """dL/dr_ij = Jᵀ·dL/dq (J = ∂q/∂r_ij) as a function of dL/dq alone, for training on forces.

    Its derivative with respect to dL/dq is J·(direction), one fused kernel pass (``moments_jvp``);
    the derivative with respect to the positions (J's own dependence on r, third-order in E) is not
    formed: gradients of a force loss with respect to the parameters are exact, those with respect
    to positions or strain are not, which is why only ``exact_hessian=False`` callers (the trainer) get this.
    """

    @staticmethod
    def forward(ctx, grad_q: Tensor, rij: Tensor, mask: Tensor, rows: Tensor, scale: Tensor, consts: tuple,
                kernel) -> Tensor:
        ctx.save_for_backward(rij, mask, rows, scale)
        ctx.consts, ctx.kernel = consts, kernel
        return kernel.moments_backward(grad_q, rij, mask, rows, scale, *consts)

    @staticmethod
    def backward(ctx, direction: Tensor):
        rij, mask, rows, scale = ctx.saved_tensors
        dq = ctx.kernel.moments_jvp(direction, rij, mask, rows, scale, *ctx.consts)
        return dq, None, None, None, None, None, None


def _moments_forward(rij: Tensor, mask: Tensor, rows: Tensor, scale: Tensor, rcut_smth: float, rcut: float,
                     n_basis: int, n_rows: int) -> tuple[Tensor, tuple[Tensor, ...]]:
    """q of :class:`_PairMoments` [4, N, n_rows] and what its backward needs."""
    n, s = mask.shape
    xyz = rij.permute(2, 0, 1).reshape(3, -1)  # [3, P], P = N·S
    r = torch.where(mask.reshape(-1), (xyz * xyz).sum(0).sqrt_(), rcut + 1.0)
    inv_r = r.reciprocal()  # padding sits beyond the cutoff: w = 0 and every term below vanishes
    u = xyz * inv_r
    w, dw = _switch_with_slope(r, rcut_smth, rcut)
    scale_p = scale.repeat_interleave(s)
    cs = scale_p * w * inv_r  # c·s(r), s of Eq. 12
    b, db, k = _bspline_with_slope(r, rcut, n_basis)
    # the basis weight is w·φ_k (Eq. 19's w_ij times g_ij), so w enters twice with r̃ = s·(1, u)
    db = db * w + b * dw
    b = b * w
    e = torch.cat([cs[None], cs * u])  # c·r̃, [4, P]
    bins = (torch.arange(n, device=rij.device) * n_rows).repeat_interleave(s) + rows.reshape(-1) + k
    z = torch.zeros(16, n * n_rows, dtype=rij.dtype, device=rij.device)
    z.index_add_(1, bins, (b[:, None] * e[None]).view(16, -1))  # [(m, β), (i, Z_j, k)]
    z = z.view(4, 4, -1, n_basis)
    q = z[0].clone()
    for m in range(1, 4):  # spline m of a pair in bin k adds to row k + m (k + 3 < K always)
        q[..., m:] += z[m, ..., : n_basis - m]
    cs_r = cs * inv_r
    return q.view(4, n, n_rows), (bins, b, db, e, u, cs_r, scale_p * (dw * inv_r) - cs_r)


def _moments_backward(grad_q: Tensor, bins: Tensor, b: Tensor, db: Tensor, e: Tensor, u: Tensor, cs_r: Tensor,
                      cds: Tensor, n_basis: int, n: int, s: int) -> Tensor:
    """∂L/∂r_ij [N, S, 3] from ∂L/∂q (the first derivative of :func:`_moments_forward`)."""
    gq = grad_q.reshape(4, -1, n_basis)
    h = torch.zeros(4, *gq.shape, dtype=gq.dtype, device=gq.device)  # [m, β, (i, Z_j), k]
    for m in range(4):
        h[m, ..., : n_basis - m] = gq[..., m:]
    g = h.view(16, -1).index_select(1, bins).view(4, 4, -1)  # ∂L/∂(b_m r̃_β) of every pair
    dl_db = (g * e[None]).sum(1)
    dl_de = (g * b[:, None]).sum(0)
    a = dl_de[1:]
    ua = (u * a).sum(0)
    dl_dr = (dl_db * db).sum(0) + cds * (dl_de[0] + ua)
    # r̃ = c s (1, u): radial part along u, angular part (I − u uᵀ) a · c s / r
    grad = u * (dl_dr - cs_r * ua) + cs_r * a
    return grad.view(3, n, s).permute(1, 2, 0)


def _switch_with_slope(r: Tensor, rcut_smth: float, rcut: float) -> tuple[Tensor, Tensor]:
    """Eq. 13's w(r) and dw/dr (1/Å)."""
    width = rcut - rcut_smth
    t = ((r - rcut_smth) * (1.0 / width)).clamp_(0.0, 1.0)
    t2 = t * t
    w = (t * (15.0 - 6.0 * t) - 10.0).mul_(t2 * t).add_(1.0)
    dw = (1.0 - t).square_().mul_(t2 * (-30.0 / width))
    return w, dw


_SPLINE = torch.tensor([  # rows: b_0..b_3 then their slopes d/dv; columns: 1, v, v², v³
    [1 / 6, -1 / 2, 1 / 2, -1 / 6], [2 / 3, 0, -1, 1 / 2], [1 / 6, 1 / 2, 1 / 2, -1 / 2], [0, 0, 0, 1 / 6],
    [-1 / 2, 1, -1 / 2, 0], [0, -2, 3 / 2, 0], [1 / 2, 1, -3 / 2, 0], [0, 0, 1 / 2, 0],
], dtype=torch.float64)


def _bspline_with_slope(r: Tensor, rcut: float, n_basis: int) -> tuple[Tensor, Tensor, Tensor]:
    """The 4 non-zero cubic B-splines at r (Å), their slopes d/dr (1/Å), [4, P] each, and the first index k [P]."""
    n_int = n_basis - 3
    h = rcut / n_int
    x = (r * (1.0 / h)).clamp_(0.0, n_int - 1e-6)
    k = x.floor()
    v = x - k
    v2 = v * v
    both = _SPLINE.to(device=r.device, dtype=r.dtype) @ torch.stack([torch.ones_like(v), v, v2, v2 * v])
    return both[:4], both[4:] * (1.0 / h), k.long()  # the slope is 0 where x is clamped: there w = 0


def pair_moments_reference(rij: Tensor, mask: Tensor, rows: Tensor, scale: Tensor, rcut_smth: float, rcut: float,
                           n_basis: int, n_rows: int) -> Tensor:
    """Plain-autograd version of :class:`_PairMoments` (the definition; used for second derivatives and tests)."""
    n, s = mask.shape
    env = environment(rij, mask, rcut_smth, rcut, inv_scale=scale)  # c·r̃, [N, S, 4]
    b, k = bspline_weights(env.r, rcut, n_basis)
    idx = ((torch.arange(n, device=rij.device) * n_rows)[:, None, None] + rows[..., None] + k).view(-1)
    vals = ((b * env.w[..., None])[..., :, None] * env.env[..., None, :]).reshape(-1, 4)
    q = torch.zeros(n * n_rows, 4, dtype=rij.dtype, device=rij.device).index_add(0, idx, vals)
    return q.view(n, n_rows, 4).permute(2, 0, 1)


class BasisTwoBody(nn.Module):
    """symm(g_ij, r̃_ij) (Eq. 18–20) for g_ij = Σ_k φ_k(r_ij) C[Z_i, Z_j, k, :], [N, width·axis]."""

    def __init__(self, n_types: int, n_basis: int, width: int, axis: int, sel: int, rcut: float,
                 rcut_smth: float = 0.5, dtype=None):
        super().__init__()
        if axis > width:
            raise ValueError(f"student axis_neuron {axis} exceeds the embedding width {width}")
        if n_basis < 4:
            raise ValueError(f"student_basis must be at least 4 (cubic B-splines), got {n_basis}")
        self.n_types, self.n_basis, self.width, self.axis, self.sel = n_types, n_basis, width, axis, sel
        self.rcut, self.rcut_smth = rcut, rcut_smth
        # C[Z_i] as a [n_types·K, width] block per centre type; O(1) embeddings at init
        self.coef = nn.Parameter(torch.randn(n_types, n_types * n_basis, width, dtype=dtype))
        self.out_dim = width * axis
        # N^m of Eq. 19: sel until Potential.fit_input_stats sets the data's mean neighbour count (as Repinit)
        self.register_buffer("n_norm", torch.tensor(float(sel), dtype=dtype))
        self.use_fast = True  # hand-written pair derivative (False: plain autograd, same numbers)

    def moments(self, types: Tensor, rij: Tensor, mask: Tensor, index: Tensor, inv_scale: Tensor,
                exact_hessian: bool = True) -> Tensor:
        """Eq. 19 for this g: p_i = (1/N^m) Σ_j w_ij g_ij ⊗ r̃_ij = C[Z_i]ᵀ q_i, [N, width, 4].

        q_i[(Z_j, k), β] = (1/N^m) Σ_j w_ij φ_k(r_ij) r̃_ij,β is scattered straight from the 4 non-zero φ_k.
        ``exact_hessian=False`` (training on forces) lets the compiled kernel skip second derivatives in r.
        """
        n, s = index.shape
        t_j = torch.index_select(types, 0, index.clamp(min=0).reshape(-1)).view(n, s)
        args = (rij, mask, t_j * self.n_basis, inv_scale / self.n_norm, self.rcut_smth, self.rcut,
                self.n_basis, self.n_types * self.n_basis)
        q = _PairMoments.apply(*args, exact_hessian) if self.use_fast else pair_moments_reference(*args)  # [4, N, T·K]
        # C[Z_i]ᵀ q_i for all centre types in one GEMM, then each atom keeps its own type's block
        t, c, m = self.coef.shape
        all_types = (q.reshape(4 * n, c) @ self.coef.permute(1, 0, 2).reshape(c, t * m)).view(4, n, t, m)
        mine = torch.gather(all_types, 2, types.view(1, n, 1, 1).expand(4, n, 1, m)).squeeze(2)  # [4, N, width]
        return mine.permute(1, 2, 0)

    def forward(self, types: Tensor, rij: Tensor, mask: Tensor, index: Tensor, inv_scale: Tensor,
                exact_hessian: bool = True) -> Tensor:
        """Eq. 18–20 on the basis moments."""
        p = self.moments(types, rij, mask, index, inv_scale, exact_hessian)
        return symm_contract(p, symm_split(p, self.axis))


@register_descriptor("student")
class StudentDescriptor(Descriptor):
    """D_i = concat(f⁰_i, symm(g_ij, r̃_ij)) over one cutoff; the ``repinit_*`` config fields set cutoff,
    sel, embedding width (last of ``repinit_neuron``) and axis; ``student_embedding`` picks the embedding."""

    def __init__(self, config: "ModelConfig", n_types: int, dtype=None):
        super().__init__()
        c = config
        self.ranges = [(c.repinit_rcut_smth, c.repinit_rcut)]
        self.sels = [c.repinit_sel]
        self.type_embedding = TypeEmbedding(n_types, c.tebd_dim, act=c.activation, dtype=dtype)
        if c.student_embedding == "basis":
            self.two_body = BasisTwoBody(n_types, c.student_basis, c.repinit_neuron[-1], c.repinit_axis,
                                         c.repinit_sel, c.repinit_rcut, c.repinit_rcut_smth, dtype=dtype)
        elif c.student_embedding == "mlp":
            self.two_body = Repinit(c.tebd_dim, c.repinit_neuron, c.repinit_axis, c.repinit_sel,
                                    act=c.activation, add_f0=False, dtype=dtype)
        else:
            raise ValueError(f"student_embedding must be 'basis' or 'mlp', got {c.student_embedding!r}")
        self.embedding = c.student_embedding
        self.out_dim = c.tebd_dim + self.two_body.out_dim
        # RMS of s(r) per centre type (set from data by Potential.fit_input_stats)
        self.init_input_stats(n_types, dtype)

    def forward(self, types: Tensor, rij: Sequence[Tensor], masks: Sequence[Tensor], indices: Sequence[Tensor],
                exact_hessian: bool = True) -> Tensor:
        """D_i for every atom, [N, tebd_dim + width·axis]."""
        f0 = self.type_embedding(types)
        inv = self.inverse_scale(types)
        if self.embedding == "basis":
            d = self.two_body(types, rij[0], masks[0], indices[0], inv[0], exact_hessian)
        else:
            d = self.two_body(f0, environment(rij[0], masks[0], *self.ranges[0], inv_scale=inv[0]), indices[0])
        return torch.cat([f0, d], dim=-1)

    def neighbor_norm_blocks(self) -> list[list[nn.Module]]:
        """The two-body block normalises over the one list."""
        return [[self.two_body]]
