// A basis-embedding student's energies, forces and virial for one MD step, in one call (CPU, no autograd).
//
// The model is small: through PyTorch's Python API its ~60 operations (pair kernels, one GEMM per type
// block for p = C[Z_i]ᵀ q, Eq. 18's products, the fitting net and their hand-written backward pass)
// cost as much in dispatch as in arithmetic. Here they run back to back from C++. The numbers match
// Potential.forward (tests/test_student_inference.py); lam_lab/nn/student_inference.py prepares the
// arguments. Atoms are sorted by type: block b holds atoms [block_ends[b-1], block_ends[b]), all of
// centre type t_b, with coef[b] = C[t_b] restricted to the neighbour types present, [n_rows, width].
#include "pair_kernels.h"

namespace {

// The fitting MLP (lam_lab/nn/mlp.py: tanh layers, skips "none" 0 / "same" 1 / "double" 2, optional
// per-unit step dt, linear output) on the input [lead, x], and ∂(Σ outputs)/∂x by hand. The first
// layer takes lead (the type embedding, no gradient needed) and x through separate column blocks of
// its weight, so the [N, 1032] input is never concatenated and its gradient never sliced.
// Eq. 18 per atom, stored transposed: Dᵀ[γ, α] = Σ_β p[β, γ] p[β, α] for γ < axis, [N, axis, width]
// (the caller permutes the first layer's columns to match). Every inner loop then runs along α over
// whole rows of p, which vectorises; PyTorch's bmm spends most of its time on 4×16 blocks.
void symm_t(const torch::Tensor& p, int64_t axis, torch::Tensor& dt) {
  const int64_t n = p.size(0), width = p.size(2);
  dt.resize_({n, axis, width});
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "symm_t", [&] {
    using T = scalar_t;
    const T* p_ = p.data_ptr<T>();
    T* d_ = dt.data_ptr<T>();
    at::parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const T* __restrict__ pi = p_ + i * 4 * width;
        for (int64_t c = 0; c < axis; ++c) {
          T* __restrict__ row = d_ + (i * axis + c) * width;
          const T p0 = pi[c], p1 = pi[width + c], p2 = pi[2 * width + c], p3 = pi[3 * width + c];
          for (int64_t a = 0; a < width; ++a)
            row[a] = p0 * pi[a] + p1 * pi[width + a] + p2 * pi[2 * width + a] + p3 * pi[3 * width + a];
        }
      }
    });
  });
}

// ∂L/∂p [N, 4, width] from G = ∂L/∂Dᵀ [N, axis, width]: p enters as p_α (all rows) and as p_γ (γ < axis)
void symm_t_grad(const torch::Tensor& p, const torch::Tensor& g, torch::Tensor& out) {
  const int64_t n = p.size(0), width = p.size(2), axis = g.size(1);
  out.resize_({n, 4, width});
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "symm_t_grad", [&] {
    using T = scalar_t;
    const T* p_ = p.data_ptr<T>();
    const T* g_ = g.data_ptr<T>();
    T* o_ = out.data_ptr<T>();
    at::parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const T* __restrict__ pi = p_ + i * 4 * width;
        const T* __restrict__ gi = g_ + i * axis * width;
        T* __restrict__ oi = o_ + i * 4 * width;
        for (int bta = 0; bta < 4; ++bta) {
          const T* __restrict__ pb = pi + bta * width;
          T* __restrict__ ob = oi + bta * width;
          for (int64_t a = 0; a < width; ++a) ob[a] = 0;
          for (int64_t c = 0; c < axis; ++c) {  // Σ_γ G[γ, α] p[β, γ]
            const T pc = pb[c];
            const T* __restrict__ gc = gi + c * width;
            for (int64_t a = 0; a < width; ++a) ob[a] += pc * gc[a];
          }
          for (int64_t c = 0; c < axis; ++c) {  // Σ_α G[γ, α] p[β, α]
            const T* __restrict__ gc = gi + c * width;
            T acc = 0;
            _Pragma("omp simd reduction(+ : acc)")  // (_Pragma: this code sits inside a macro argument)
            for (int64_t a = 0; a < width; ++a) acc += gc[a] * pb[a];
            ob[c] += acc;
          }
        }
      }
    });
  });
}

// ∂L/∂z of a = tanh(z), y = dt·a: g·dt·(1 − a²) in one pass (four ATen ops otherwise)
torch::Tensor tanh_grad(const torch::Tensor& g, const torch::Tensor& a, const torch::Tensor& dt) {
  auto gc = g.contiguous();
  auto out = torch::empty_like(a);
  const int64_t rows = a.size(0), cols = a.size(1);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "tanh_grad", [&] {
    using T = scalar_t;
    const T* __restrict__ g_ = gc.data_ptr<T>();
    const T* __restrict__ a_ = a.data_ptr<T>();
    const T* __restrict__ d_ = dt.numel() ? dt.data_ptr<T>() : nullptr;
    T* __restrict__ o_ = out.data_ptr<T>();
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const T ai = a_[i * cols + j];
        o_[i * cols + j] = g_[i * cols + j] * (d_ ? d_[j] : T(1)) * (T(1) - ai * ai);
      }
  });
  return out;
}

torch::Tensor fitting_value_and_grad(const torch::Tensor& lead, const torch::Tensor& x_in,
                                     const std::vector<torch::Tensor>& weights, const std::vector<torch::Tensor>& biases,
                                     const std::vector<torch::Tensor>& dts, const std::vector<int64_t>& skips,
                                     const torch::Tensor& out_weight, const torch::Tensor& out_bias, torch::Tensor& grad) {
  // grad arrives as a buffer for ∂/∂x_in (resized here) and leaves holding it
  // weights[0] comes split by the caller into its lead and x column blocks, each contiguous (a strided
  // view would be copied by every GEMM)
  TORCH_CHECK(weights.size() == biases.size() + 1 && skips[0] == 0,
              "student_md: the first layer's weight in two blocks, and it must change the width");
  const auto& w_x = weights[1];
  std::vector<torch::Tensor> acts;
  torch::Tensor x;
  for (size_t l = 0; l < biases.size(); ++l) {
    auto a = l == 0 ? at::addmm(at::addmm(biases[0], lead, weights[0].t()), x_in, w_x.t())
                    : at::addmm(biases[l], x, weights[l + 1].t());
    a.tanh_();
    acts.push_back(a);
    const bool has_dt = dts[l].numel() > 0;
    if (skips[l] == 1) x = has_dt ? at::addcmul(x, a, dts[l]) : x + a;
    else if (skips[l] == 2) x = at::cat({x, x}, 1) + (has_dt ? a * dts[l] : a);
    else x = has_dt ? a * dts[l] : a;
  }
  auto value = at::addmm(out_bias, x, out_weight.t()).squeeze(1);
  auto g = out_weight.sum(0).expand_as(x);
  for (size_t l = biases.size(); l-- > 0;) {
    auto g_z = tanh_grad(g, acts[l], dts[l]);
    if (l == 0) {  // skips[0] is "none": nothing to add
      grad.resize_({x_in.size(0), x_in.size(1)});
      at::mm_out(grad, g_z, w_x);
      return value;
    }
    const auto& w = weights[l + 1];
    if (skips[l] == 1) {
      g = at::addmm(g, g_z, w);
    } else if (skips[l] == 2) {
      const int64_t half = g.size(1) / 2;
      g = at::mm(g_z, w) + g.narrow(1, 0, half) + g.narrow(1, half, half);
    } else {
      g = at::mm(g_z, w);
    }
  }
  return value;
}

}  // namespace

static std::vector<torch::Tensor> student_md(torch::Tensor pos, torch::Tensor index, torch::Tensor shift,
                                             torch::Tensor rows, torch::Tensor scale, double rcut_smth, double rcut,
                                             int64_t n_basis, int64_t sel, std::vector<int64_t> block_ends,
                                             std::vector<torch::Tensor> coef, int64_t axis, torch::Tensor lead,
                                             std::vector<torch::Tensor> weights, std::vector<torch::Tensor> biases,
                                             std::vector<torch::Tensor> dts, std::vector<int64_t> skips,
                                             torch::Tensor out_weight, torch::Tensor out_bias,
                                             std::vector<torch::Tensor> work, bool virial) {
  // work: six tensors of the model's dtype kept by the caller between steps (resized here as needed),
  // so the large per-step arrays are not allocated, page-faulted and freed every step
  torch::NoGradGuard no_grad;
  TORCH_CHECK(coef.size() == block_ends.size() && !coef.empty(), "student_md: one coef per type block");
  TORCH_CHECK(work.size() == 6, "student_md: six work tensors");
  const int64_t n = index.size(0), n_rows = coef[0].size(0), width = coef[0].size(1);
  auto& q = work[0];  // [N, 4, n_rows]
  auto count = verlet_moments_forward(q, pos, index, shift, rows, scale, rcut_smth, rcut, n_basis, n_rows);
  if (n > 0 && count.max().item<int64_t>() > sel) return {};

  // Eq. 19 for g = Σ_k φ_k C_k: p_i = C[Z_i]ᵀ q_i, one GEMM per type block, [N, 4, width]
  auto& p = work[1];
  auto& grad_q = work[5];
  p.resize_({n, 4, width});
  grad_q.resize_({n, 4, n_rows});
  auto per_block = [&](auto&& f) {
    int64_t lo = 0;
    for (size_t b = 0; b < coef.size(); ++b) {
      f(lo, block_ends[b] - lo, coef[b]);
      lo = block_ends[b];
    }
  };
  per_block([&](int64_t lo, int64_t len, const torch::Tensor& c) {
    auto out = p.narrow(0, lo, len).view({-1, width});
    at::mm_out(out, q.narrow(0, lo, len).view({-1, n_rows}), c);
  });
  auto& d = work[2];
  symm_t(p, axis, d);  // Eq. 18 with p^< of Eq. 20, as Dᵀ [N, axis, width]
  auto& grad_d = work[3];
  auto atomic = fitting_value_and_grad(lead, d.view({n, width * axis}), weights, biases, dts, skips, out_weight,
                                       out_bias, grad_d);

  // backwards: ∂E/∂Dᵀ → ∂E/∂p (p enters D twice) → ∂E/∂q → forces and virial (pair kernel)
  auto& grad_p = work[4];
  symm_t_grad(p, grad_d.view({n, axis, width}), grad_p);
  per_block([&](int64_t lo, int64_t len, const torch::Tensor& c) {
    auto out = grad_q.narrow(0, lo, len).view({-1, n_rows});
    at::mm_out(out, grad_p.narrow(0, lo, len).view({-1, width}), c.t());
  });
  auto fv = verlet_forces(grad_q, pos, index, shift, rows, scale, rcut_smth, rcut, n_basis, n_rows, virial);
  return {atomic, fv[0], fv[1]};
}

void bind_student_md(pybind11::module_& m) {
  m.def("student_md", &student_md, "student atomic energies [N], forces [N, 3] and virial [3, 3] for MD "
        "(empty when an atom has more than sel neighbours inside rcut)");
}
