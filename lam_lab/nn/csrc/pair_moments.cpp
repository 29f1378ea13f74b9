// The student's pair moments (lam_lab/nn/student.py, _PairMoments) fused into one loop per atom, CPU.
//
//   q[β, i, rows_ij + k + m] += c_i · w(r_ij) φ_{k+m}(r_ij) · r̃_ij,β      (Eq. 19 with g = Σ_k φ_k C_k)
//
// PyTorch runs this as ~40 elementwise ops on [16, N·S] tensors plus a scatter; here each pair is read
// once and its 16 products go straight into its atom's row (no atomics: one thread owns atom i).
// The backward recomputes the per-pair quantities instead of storing them. Both are checked against
// the plain-autograd definition (pair_moments_reference) in tests/test_student_kernel.py.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>

namespace {

template <typename T>
struct Pair {
  T u[3], inv_r, w, dw, cs, b[4], db[4];  // db: d(w·φ)/dr
  int64_t bin;
};

// false where the slot is padding or the neighbour lies at/after rcut (w = 0: nothing to add)
template <typename T>
inline bool pair_terms(const T* rij, T scale, T rs, T rc, int64_t n_int, T h, int64_t row, Pair<T>& p) {
  const T x = rij[0], y = rij[1], z = rij[2];
  const T r = std::sqrt(x * x + y * y + z * z);
  if (!(r < rc) || r <= T(0)) return false;
  p.inv_r = T(1) / r;
  p.u[0] = x * p.inv_r; p.u[1] = y * p.inv_r; p.u[2] = z * p.inv_r;
  const T width = rc - rs;
  T t = (r - rs) / width;
  t = t < T(0) ? T(0) : (t > T(1) ? T(1) : t);
  const T t2 = t * t;
  p.w = (t * (T(15) - T(6) * t) - T(10)) * t2 * t + T(1);  // Eq. 13
  p.dw = (T(1) - t) * (T(1) - t) * t2 * (T(-30) / width);
  p.cs = scale * p.w * p.inv_r;
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

}  // namespace

torch::Tensor moments_forward(torch::Tensor rij, torch::Tensor mask, torch::Tensor rows, torch::Tensor scale,
                              double rcut_smth, double rcut, int64_t n_basis, int64_t n_rows) {
  rij = rij.contiguous(); mask = mask.contiguous(); rows = rows.contiguous(); scale = scale.contiguous();
  const int64_t n = mask.size(0), s = mask.size(1);
  auto q = torch::zeros({4, n, n_rows}, rij.options());
  AT_DISPATCH_FLOATING_TYPES(rij.scalar_type(), "moments_forward", [&] {
    using T = scalar_t;
    const T* r_ = rij.data_ptr<T>();
    const bool* m_ = mask.data_ptr<bool>();
    const int64_t* row_ = rows.data_ptr<int64_t>();
    const T* c_ = scale.data_ptr<T>();
    T* q_ = q.data_ptr<T>();
    const int64_t n_int = n_basis - 3;
    const T h = T(rcut) / T(n_int);
    at::parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
      Pair<T> p;
      for (int64_t i = lo; i < hi; ++i) {
        T* qi[4] = {q_ + i * n_rows, q_ + (n + i) * n_rows, q_ + (2 * n + i) * n_rows, q_ + (3 * n + i) * n_rows};
        for (int64_t j = 0; j < s; ++j) {
          const int64_t ij = i * s + j;
          if (!m_[ij] || !pair_terms<T>(r_ + 3 * ij, c_[i], T(rcut_smth), T(rcut), n_int, h, row_[ij], p)) continue;
          const T e[4] = {p.cs, p.cs * p.u[0], p.cs * p.u[1], p.cs * p.u[2]};
          for (int bta = 0; bta < 4; ++bta)
            for (int m = 0; m < 4; ++m) qi[bta][p.bin + m] += p.b[m] * e[bta];
        }
      }
    });
  });
  return q;
}

torch::Tensor moments_backward(torch::Tensor grad_q, torch::Tensor rij, torch::Tensor mask, torch::Tensor rows,
                               torch::Tensor scale, double rcut_smth, double rcut, int64_t n_basis, int64_t n_rows) {
  grad_q = grad_q.contiguous(); rij = rij.contiguous(); mask = mask.contiguous(); rows = rows.contiguous();
  scale = scale.contiguous();
  const int64_t n = mask.size(0), s = mask.size(1);
  auto grad = torch::zeros_like(rij);
  AT_DISPATCH_FLOATING_TYPES(rij.scalar_type(), "moments_backward", [&] {
    using T = scalar_t;
    const T* g_ = grad_q.data_ptr<T>();
    const T* r_ = rij.data_ptr<T>();
    const bool* m_ = mask.data_ptr<bool>();
    const int64_t* row_ = rows.data_ptr<int64_t>();
    const T* c_ = scale.data_ptr<T>();
    T* out = grad.data_ptr<T>();
    const int64_t n_int = n_basis - 3;
    const T h = T(rcut) / T(n_int);
    at::parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
      Pair<T> p;
      for (int64_t i = lo; i < hi; ++i) {
        const T* gi[4] = {g_ + i * n_rows, g_ + (n + i) * n_rows, g_ + (2 * n + i) * n_rows, g_ + (3 * n + i) * n_rows};
        for (int64_t j = 0; j < s; ++j) {
          const int64_t ij = i * s + j;
          if (!m_[ij] || !pair_terms<T>(r_ + 3 * ij, c_[i], T(rcut_smth), T(rcut), n_int, h, row_[ij], p)) continue;
          const T e[4] = {p.cs, p.cs * p.u[0], p.cs * p.u[1], p.cs * p.u[2]};
          T dl_db[4] = {0, 0, 0, 0}, dl_de[4] = {0, 0, 0, 0};
          for (int m = 0; m < 4; ++m)
            for (int bta = 0; bta < 4; ++bta) {
              const T g = gi[bta][p.bin + m];
              dl_db[m] += g * e[bta];
              dl_de[bta] += g * p.b[m];
            }
          const T ua = p.u[0] * dl_de[1] + p.u[1] * dl_de[2] + p.u[2] * dl_de[3];
          const T cs_r = p.cs * p.inv_r;
          const T cds = c_[i] * p.dw * p.inv_r - cs_r;
          T dl_dr = cds * (dl_de[0] + ua);
          for (int m = 0; m < 4; ++m) dl_dr += dl_db[m] * p.db[m];
          // r̃ = c s (1, u): radial part along u, angular part (I − u uᵀ) a · c s / r
          for (int d = 0; d < 3; ++d) out[3 * ij + d] = p.u[d] * (dl_dr - cs_r * ua) + cs_r * dl_de[d + 1];
        }
      }
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
  const int64_t n = mask.size(0), s = mask.size(1);
  auto dq = torch::zeros({4, n, n_rows}, rij.options());
  AT_DISPATCH_FLOATING_TYPES(rij.scalar_type(), "moments_jvp", [&] {
    using T = scalar_t;
    const T* d_ = dir.data_ptr<T>();
    const T* r_ = rij.data_ptr<T>();
    const bool* m_ = mask.data_ptr<bool>();
    const int64_t* row_ = rows.data_ptr<int64_t>();
    const T* c_ = scale.data_ptr<T>();
    T* q_ = dq.data_ptr<T>();
    const int64_t n_int = n_basis - 3;
    const T h = T(rcut) / T(n_int);
    at::parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
      Pair<T> p;
      for (int64_t i = lo; i < hi; ++i) {
        T* qi[4] = {q_ + i * n_rows, q_ + (n + i) * n_rows, q_ + (2 * n + i) * n_rows, q_ + (3 * n + i) * n_rows};
        for (int64_t j = 0; j < s; ++j) {
          const int64_t ij = i * s + j;
          if (!m_[ij] || !pair_terms<T>(r_ + 3 * ij, c_[i], T(rcut_smth), T(rcut), n_int, h, row_[ij], p)) continue;
          const T* w = d_ + 3 * ij;
          const T ur = p.u[0] * w[0] + p.u[1] * w[1] + p.u[2] * w[2];
          const T cs_r = p.cs * p.inv_r;
          const T cds = c_[i] * p.dw * p.inv_r - cs_r;
          const T e[4] = {p.cs, p.cs * p.u[0], p.cs * p.u[1], p.cs * p.u[2]};
          T de[4] = {cds * ur, 0, 0, 0};
          for (int d = 0; d < 3; ++d) de[d + 1] = cds * ur * p.u[d] + cs_r * (w[d] - p.u[d] * ur);
          for (int m = 0; m < 4; ++m) {
            const T dbm = p.db[m] * ur;
            for (int bta = 0; bta < 4; ++bta) qi[bta][p.bin + m] += dbm * e[bta] + p.b[m] * de[bta];
          }
        }
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
