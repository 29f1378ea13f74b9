// The student's pair moments (lam_lab/nn/student.py, _PairMoments) fused into one loop per atom, CPU.
//
//   q[β, i, rows_ij + k + m] += c_i · w(r_ij) φ_{k+m}(r_ij) · r̃_ij,β      (Eq. 19 with g = Σ_k φ_k C_k)
//
// PyTorch runs this as ~40 elementwise ops on [16, N·S] tensors plus a scatter; here each pair is read
// once and its 16 products go straight into its atom's row (no atomics: one thread owns atom i).
// The derivatives recompute the per-pair quantities instead of storing them. All three are checked
// against the plain-autograd definition (pair_moments_reference) in tests/test_model_physics.py.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>

namespace {

// One neighbour's terms: r̂, the switch w (Eq. 13), e = c·r̃ (Eq. 11), the four w·φ_m and their slopes.
template <typename T>
struct Pair {
  T u[3], w, dw, e[4], b[4], db[4];  // db: d(w·φ)/dr
  T cs_r;  // c·s(r)/r
  T cds;   // d(c·s)/dr
  int64_t bin;
};

// false where the neighbour lies at/after rcut (w = 0: nothing to add)
template <typename T>
inline bool pair_terms(const T* rij, T c, T rs, T rc, int64_t n_int, T h, int64_t row, Pair<T>& p) {
  const T x = rij[0], y = rij[1], z = rij[2];
  const T r = std::sqrt(x * x + y * y + z * z);
  if (!(r < rc) || r <= T(0)) return false;
  const T inv_r = T(1) / r;
  p.u[0] = x * inv_r; p.u[1] = y * inv_r; p.u[2] = z * inv_r;
  const T width = rc - rs;
  T t = (r - rs) / width;
  t = t < T(0) ? T(0) : (t > T(1) ? T(1) : t);
  const T t2 = t * t;
  p.w = (t * (T(15) - T(6) * t) - T(10)) * t2 * t + T(1);  // Eq. 13
  p.dw = (T(1) - t) * (T(1) - t) * t2 * (T(-30) / width);
  const T cs = c * p.w * inv_r;
  p.e[0] = cs; p.e[1] = cs * p.u[0]; p.e[2] = cs * p.u[1]; p.e[3] = cs * p.u[2];
  p.cs_r = cs * inv_r;
  p.cds = c * p.dw * inv_r - p.cs_r;
  T xk = r / h;
  const T top = T(n_int) - T(1e-6);
  xk = xk > top ? top : xk;
  const T k = std::floor(xk);
  const T v = xk - k, v2 = v * v, v3 = v2 * v;
  const T b[4] = {(T(1) - T(3) * v + T(3) * v2 - v3) / T(6), T(2) / T(3) - v2 + T(0.5) * v3,
                  T(1) / T(6) + T(0.5) * (v + v2 - v3), v3 / T(6)};
  const T s[4] = {T(-0.5) + v - T(0.5) * v2, T(-2) * v + T(1.5) * v2, T(0.5) + v - T(1.5) * v2, T(0.5) * v2};
  for (int m = 0; m < 4; ++m) {
    p.db[m] = s[m] / h * p.w + b[m] * p.dw;
    p.b[m] = b[m] * p.w;
  }
  p.bin = row + static_cast<int64_t>(k);
  return true;
}

// f(i, ij, pair) for every real neighbour j of every atom i inside rcut; atoms are split across
// threads, so f may write atom i's rows of a [4, N, n_rows] tensor without atomics.
template <typename T, typename F>
void for_each_pair(const torch::Tensor& rij, const torch::Tensor& mask, const torch::Tensor& rows,
                   const torch::Tensor& scale, double rcut_smth, double rcut, int64_t n_basis, F&& f) {
  const int64_t n = mask.size(0), s = mask.size(1);
  const T* r_ = rij.data_ptr<T>();
  const bool* m_ = mask.data_ptr<bool>();
  const int64_t* row_ = rows.data_ptr<int64_t>();
  const T* c_ = scale.data_ptr<T>();
  const int64_t n_int = n_basis - 3;
  const T h = T(rcut) / T(n_int);
  at::parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
    Pair<T> p;
    for (int64_t i = lo; i < hi; ++i)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t ij = i * s + j;
        if (m_[ij] && pair_terms<T>(r_ + 3 * ij, c_[i], T(rcut_smth), T(rcut), n_int, h, row_[ij], p)) f(i, ij, p);
      }
  });
}

}  // namespace

torch::Tensor moments_forward(torch::Tensor rij, torch::Tensor mask, torch::Tensor rows, torch::Tensor scale,
                              double rcut_smth, double rcut, int64_t n_basis, int64_t n_rows) {
  rij = rij.contiguous(); mask = mask.contiguous(); rows = rows.contiguous(); scale = scale.contiguous();
  const int64_t n = mask.size(0);
  auto q = torch::zeros({4, n, n_rows}, rij.options());
  AT_DISPATCH_FLOATING_TYPES(rij.scalar_type(), "moments_forward", [&] {
    using T = scalar_t;
    T* q_ = q.data_ptr<T>();
    for_each_pair<T>(rij, mask, rows, scale, rcut_smth, rcut, n_basis, [&](int64_t i, int64_t, const Pair<T>& p) {
      for (int bta = 0; bta < 4; ++bta) {
        T* qi = q_ + (bta * n + i) * n_rows + p.bin;
        for (int m = 0; m < 4; ++m) qi[m] += p.b[m] * p.e[bta];
      }
    });
  });
  return q;
}

torch::Tensor moments_backward(torch::Tensor grad_q, torch::Tensor rij, torch::Tensor mask, torch::Tensor rows,
                               torch::Tensor scale, double rcut_smth, double rcut, int64_t n_basis, int64_t n_rows) {
  grad_q = grad_q.contiguous(); rij = rij.contiguous(); mask = mask.contiguous(); rows = rows.contiguous();
  scale = scale.contiguous();
  const int64_t n = mask.size(0);
  auto grad = torch::zeros_like(rij);
  AT_DISPATCH_FLOATING_TYPES(rij.scalar_type(), "moments_backward", [&] {
    using T = scalar_t;
    const T* g_ = grad_q.data_ptr<T>();
    T* out = grad.data_ptr<T>();
    for_each_pair<T>(rij, mask, rows, scale, rcut_smth, rcut, n_basis, [&](int64_t i, int64_t ij, const Pair<T>& p) {
      T dl_db[4] = {0, 0, 0, 0}, dl_de[4] = {0, 0, 0, 0};
      for (int bta = 0; bta < 4; ++bta) {
        const T* gi = g_ + (bta * n + i) * n_rows + p.bin;
        for (int m = 0; m < 4; ++m) {
          dl_db[m] += gi[m] * p.e[bta];
          dl_de[bta] += gi[m] * p.b[m];
        }
      }
      const T ua = p.u[0] * dl_de[1] + p.u[1] * dl_de[2] + p.u[2] * dl_de[3];
      T dl_dr = p.cds * (dl_de[0] + ua);
      for (int m = 0; m < 4; ++m) dl_dr += dl_db[m] * p.db[m];
      // r̃ = c s (1, u): radial part along u, angular part (I − u uᵀ) a · c s / r
      for (int d = 0; d < 3; ++d) out[3 * ij + d] = p.u[d] * (dl_dr - p.cs_r * ua) + p.cs_r * dl_de[d + 1];
    });
  });
  return grad;
}

torch::Tensor moments_jvp(torch::Tensor dir, torch::Tensor rij, torch::Tensor mask, torch::Tensor rows,
                          torch::Tensor scale, double rcut_smth, double rcut, int64_t n_basis, int64_t n_rows) {
  // dq = Σ_ij ∂q/∂r_ij · dir_ij: the derivative of the backward above with respect to dL/dq, which is
  // what training on forces needs (dL/dθ flows through dL/dq; the geometry carries no parameters).
  dir = dir.contiguous(); rij = rij.contiguous(); mask = mask.contiguous(); rows = rows.contiguous();
  scale = scale.contiguous();
  const int64_t n = mask.size(0);
  auto dq = torch::zeros({4, n, n_rows}, rij.options());
  AT_DISPATCH_FLOATING_TYPES(rij.scalar_type(), "moments_jvp", [&] {
    using T = scalar_t;
    const T* d_ = dir.data_ptr<T>();
    T* q_ = dq.data_ptr<T>();
    for_each_pair<T>(rij, mask, rows, scale, rcut_smth, rcut, n_basis, [&](int64_t i, int64_t ij, const Pair<T>& p) {
      const T* w = d_ + 3 * ij;
      const T ur = p.u[0] * w[0] + p.u[1] * w[1] + p.u[2] * w[2];
      T de[4] = {p.cds * ur, 0, 0, 0};
      for (int d = 0; d < 3; ++d) de[d + 1] = p.cds * ur * p.u[d] + p.cs_r * (w[d] - p.u[d] * ur);
      for (int bta = 0; bta < 4; ++bta) {
        T* qi = q_ + (bta * n + i) * n_rows + p.bin;
        for (int m = 0; m < 4; ++m) qi[m] += p.db[m] * ur * p.e[bta] + p.b[m] * de[bta];
      }
    });
  });
  return dq;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("moments_forward", &moments_forward, "student pair moments q [4, N, n_rows]");
  m.def("moments_backward", &moments_backward, "dL/dr_ij [N, S, 3] from dL/dq");
  m.def("moments_jvp", &moments_jvp, "dq [4, N, n_rows] along a displacement direction [N, S, 3]");
}
