// The student's pair moments (lam_lab/nn/student.py, _PairMoments) fused into one loop per atom, CPU.
//
//   q[β, i, rows_ij + k + m] += c_i · w(r_ij) φ_{k+m}(r_ij) · r̃_ij,β      (Eq. 19 with g = Σ_k φ_k C_k)
//
// PyTorch runs this as ~40 elementwise ops on [16, N·S] tensors plus a scatter; here each pair is read
// once and its 16 products go straight into its atom's row (no atomics: one thread owns atom i).
// The derivatives recompute the per-pair quantities instead of storing them. The verlet_* pair reads
// r_ij from positions and a Verlet list instead of a padded [N, S, 3] tensor (MD, student_md.cpp).
// All are checked against the plain-autograd definition (pair_moments_reference) in
// tests/test_model_physics.py and tests/test_student_inference.py.
#include "pair_kernels.h"

using namespace lam_lab;

torch::Tensor moments_forward(torch::Tensor rij, torch::Tensor mask, torch::Tensor rows, torch::Tensor scale,
                              double rcut_smth, double rcut, int64_t n_basis, int64_t n_rows) {
  rij = rij.contiguous(); mask = mask.contiguous(); rows = rows.contiguous(); scale = scale.contiguous();
  const int64_t n = mask.size(0), s = mask.size(1);
  auto q = torch::zeros({4, n, n_rows}, rij.options());
  AT_DISPATCH_FLOATING_TYPES(rij.scalar_type(), "moments_forward", [&] {
    add_moments<scalar_t>(padded<scalar_t>(rij, mask), n, s, rows, scale, rcut_smth, rcut, n_basis,
                          Layout::component_major(n, n_rows), q.data_ptr<scalar_t>(), nullptr);
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
    scalar_t* out = grad.data_ptr<scalar_t>();
    pair_gradients<scalar_t>(padded<scalar_t>(rij, mask), n, s, rows, scale, rcut_smth, rcut, n_basis,
                             Layout::component_major(n, n_rows), grad_q.data_ptr<scalar_t>(), [&](int64_t, int64_t ij, const Pair<scalar_t>&, const scalar_t* g) {
                               for (int d = 0; d < 3; ++d) out[3 * ij + d] = g[d];
                             });
  });
  return grad;
}

torch::Tensor verlet_moments_forward(torch::Tensor& q, torch::Tensor pos, torch::Tensor index, torch::Tensor shift,
                                     torch::Tensor rows, torch::Tensor scale, double rcut_smth, double rcut,
                                     int64_t n_basis, int64_t n_rows) {
  // q as moments_forward but atom-major [N, 4, n_rows], written into q (resized, reused across MD
  // steps); returns how many neighbours each atom has inside rcut (the caller checks sel)
  pos = pos.contiguous(); index = index.contiguous(); shift = shift.contiguous(); rows = rows.contiguous();
  scale = scale.contiguous();
  TORCH_CHECK(pos.scalar_type() == torch::kFloat64 && shift.scalar_type() == torch::kFloat64,
              "verlet_moments_forward: positions and shifts must be float64");
  const int64_t n = index.size(0), s = index.size(1);
  q.resize_({n, 4, n_rows}).zero_();
  auto count = torch::zeros({n}, index.options());
  AT_DISPATCH_FLOATING_TYPES(scale.scalar_type(), "verlet_moments_forward", [&] {
    add_moments<scalar_t>(verlet<scalar_t>(pos, index, shift), n, s, rows, scale, rcut_smth, rcut, n_basis,
                          Layout::atom_major(n, n_rows), q.data_ptr<scalar_t>(), count.data_ptr<int64_t>());
  });
  return count;
}

std::vector<torch::Tensor> verlet_forces(torch::Tensor grad_q, torch::Tensor pos, torch::Tensor index,
                                         torch::Tensor shift, torch::Tensor rows, torch::Tensor scale,
                                         double rcut_smth, double rcut, int64_t n_basis, int64_t n_rows,
                                         bool virial) {
  // forces −∂E/∂r [N, 3] and virial −Σ_ij r_ij ⊗ ∂E/∂r_ij [3, 3] (eV; symmetrised by the caller; zero
  // unless asked for), float64,
  // from grad_q = ∂E/∂q [N, 4, n_rows]; r_ij = r_j − r_i + shift. Each thread sums into its own buffer (the j side
  // of a pair belongs to any atom), added up at the end.
  grad_q = grad_q.contiguous(); pos = pos.contiguous(); index = index.contiguous(); shift = shift.contiguous();
  rows = rows.contiguous(); scale = scale.contiguous();
  const int64_t n = index.size(0), s = index.size(1);
  const int64_t n_threads = at::get_num_threads();
  auto buf = torch::zeros({n_threads, n * 3 + 9}, pos.options());
  AT_DISPATCH_FLOATING_TYPES(scale.scalar_type(), "verlet_forces", [&] {
    using T = scalar_t;
    double* b_ = buf.data_ptr<double>();
    const int64_t* idx = index.data_ptr<int64_t>();
    pair_gradients<T>(verlet<T>(pos, index, shift), n, s, rows, scale, rcut_smth, rcut, n_basis,
                      Layout::atom_major(n, n_rows), grad_q.data_ptr<T>(), [&](int64_t i, int64_t ij, const Pair<T>& p, const T* g) {
                        double* f = b_ + at::get_thread_num() * (n * 3 + 9);
                        const int64_t j = idx[ij];
                        for (int a = 0; a < 3; ++a) {
                          f[3 * i + a] += g[a];
                          f[3 * j + a] -= g[a];
                          if (!virial) continue;
                          const double ra = double(p.r) * p.u[a];
                          for (int c = 0; c < 3; ++c) f[3 * n + 3 * a + c] -= ra * g[c];
                        }
                      });
  });
  auto total = buf.sum(0);
  return {total.narrow(0, 0, 3 * n).view({n, 3}), total.narrow(0, 3 * n, 9).view({3, 3})};
}

torch::Tensor moments_jvp(torch::Tensor dir, torch::Tensor rij, torch::Tensor mask, torch::Tensor rows,
                          torch::Tensor scale, double rcut_smth, double rcut, int64_t n_basis, int64_t n_rows) {
  // dq = Σ_ij ∂q/∂r_ij · dir_ij: the derivative of moments_backward with respect to dL/dq, which is
  // what training on forces needs (dL/dθ flows through dL/dq; the geometry carries no parameters).
  dir = dir.contiguous(); rij = rij.contiguous(); mask = mask.contiguous(); rows = rows.contiguous();
  scale = scale.contiguous();
  const int64_t n = mask.size(0);
  auto dq = torch::zeros({4, n, n_rows}, rij.options());
  AT_DISPATCH_FLOATING_TYPES(rij.scalar_type(), "moments_jvp", [&] {
    using T = scalar_t;
    const T* d_ = dir.data_ptr<T>();
    T* q_ = dq.data_ptr<T>();
    for_each_pair<T>(padded<T>(rij, mask), mask.size(0), mask.size(1), rows, scale, rcut_smth, rcut, n_basis,
                     [&](int64_t i, int64_t ij, const Pair<T>& p) {
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
  bind_student_md(m);
  m.def("moments_jvp", &moments_jvp, "dq [4, N, n_rows] along a displacement direction [N, S, 3]");
}
