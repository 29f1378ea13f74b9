// Per-pair kernels of the student's two-body embedding (Eq. 11–13, 19 with g = Σ_k φ_k C_k), shared by
// pair_moments.cpp (training and MD passes) and student_md.cpp (the whole MD energy/force evaluation).
#pragma once
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <vector>

namespace lam_lab {

// One neighbour's terms: r̂, the switch w (Eq. 13), e = c·r̃ (Eq. 11), the four w·φ_m and their slopes.
template <typename T>
struct Pair {
  T r, u[3], w, dw, e[4], b[4], db[4];  // db: d(w·φ)/dr
  T cs_r;  // c·s(r)/r
  T cds;   // d(c·s)/dr
  int64_t bin;
};

// The cutoffs and the spline grid, with their reciprocals (a division costs ~10 multiplications).
template <typename T>
struct Grid {
  T rs, rc, rc2, inv_width, slope_w, inv_h, top;
  Grid(double rcut_smth, double rcut, int64_t n_basis) {
    const int64_t n_int = n_basis - 3;
    rs = T(rcut_smth); rc = T(rcut); rc2 = rc * rc;
    inv_width = T(1) / (rc - rs); slope_w = T(-30) * inv_width;
    inv_h = T(n_int) / rc;
    top = T(n_int) - T(1e-6);
  }
};

// One atom's neighbours inside rcut as a structure of arrays: gathered first (scalar: the sources
// differ), then every per-pair term computed in one branch-free loop that the compiler vectorises
// (sqrt, reciprocal and floor included; ~3x faster than pair by pair), then handed out as Pair.
template <typename T>
struct PairBlock {
  std::vector<T> x, y, z, r, u0, u1, u2, w, dw, e0, cs_r, cds, k, b0, b1, b2, b3, d0, d1, d2, d3;
  std::vector<int64_t> ij, row;
  int64_t m = 0;
  explicit PairBlock(int64_t s)
      : x(s), y(s), z(s), r(s), u0(s), u1(s), u2(s), w(s), dw(s), e0(s), cs_r(s), cds(s), k(s), b0(s), b1(s),
        b2(s), b3(s), d0(s), d1(s), d2(s), d3(s), ij(s), row(s) {}

  // false (nothing kept) where the neighbour lies at/after rcut: w = 0 there, it adds nothing
  bool add(const T* rij, const Grid<T>& g, int64_t ij_, int64_t row_) {
    const T r2 = rij[0] * rij[0] + rij[1] * rij[1] + rij[2] * rij[2];
    if (!(r2 < g.rc2) || r2 <= T(0)) return false;
    x[m] = rij[0]; y[m] = rij[1]; z[m] = rij[2]; ij[m] = ij_; row[m] = row_;
    ++m;
    return true;
  }

  void compute(T c, const Grid<T>& grid) {
    const Grid<T> g = grid;
    T* __restrict__ x_ = x.data(); T* __restrict__ y_ = y.data(); T* __restrict__ z_ = z.data();
    T* __restrict__ r_ = r.data(); T* __restrict__ u0_ = u0.data(); T* __restrict__ u1_ = u1.data();
    T* __restrict__ u2_ = u2.data(); T* __restrict__ w_ = w.data(); T* __restrict__ dw_ = dw.data();
    T* __restrict__ e0_ = e0.data(); T* __restrict__ csr_ = cs_r.data(); T* __restrict__ cds_ = cds.data();
    T* __restrict__ k_ = k.data(); T* __restrict__ b0_ = b0.data(); T* __restrict__ b1_ = b1.data();
    T* __restrict__ b2_ = b2.data(); T* __restrict__ b3_ = b3.data(); T* __restrict__ d0_ = d0.data();
    T* __restrict__ d1_ = d1.data(); T* __restrict__ d2_ = d2.data(); T* __restrict__ d3_ = d3.data();
    const int64_t m_ = m;
#pragma GCC ivdep  // the arrays are distinct; without this GCC gives up on 21 of them
    for (int64_t q = 0; q < m_; ++q) {
      const T rr = std::sqrt(x_[q] * x_[q] + y_[q] * y_[q] + z_[q] * z_[q]);
      const T inv_r = T(1) / rr;
      r_[q] = rr;
      u0_[q] = x_[q] * inv_r; u1_[q] = y_[q] * inv_r; u2_[q] = z_[q] * inv_r;
      const T t = std::min(std::max((rr - g.rs) * g.inv_width, T(0)), T(1));
      const T t2 = t * t;
      const T ww = (t * (T(15) - T(6) * t) - T(10)) * t2 * t + T(1);  // Eq. 13
      const T dww = (T(1) - t) * (T(1) - t) * t2 * g.slope_w;
      w_[q] = ww; dw_[q] = dww;
      const T cs = c * ww * inv_r;  // c·s(r) of Eq. 12
      e0_[q] = cs;
      csr_[q] = cs * inv_r;
      cds_[q] = c * dww * inv_r - cs * inv_r;
      const T xk = std::min(rr * g.inv_h, g.top);
      const T kk = T(static_cast<int>(xk));  // floor: xk >= 0 (std::floor and ?: keep GCC from vectorising)
      k_[q] = kk;
      const T v = xk - kk, v2 = v * v, v3 = v2 * v;
      const T bb0 = (T(1) - T(3) * v + T(3) * v2 - v3) * T(1.0 / 6.0), bb1 = T(2.0 / 3.0) - v2 + T(0.5) * v3;
      const T bb2 = T(1.0 / 6.0) + T(0.5) * (v + v2 - v3), bb3 = v3 * T(1.0 / 6.0);
      const T w_h = ww * g.inv_h;
      d0_[q] = (T(-0.5) + v - T(0.5) * v2) * w_h + bb0 * dww;
      d1_[q] = (T(-2) * v + T(1.5) * v2) * w_h + bb1 * dww;
      d2_[q] = (T(0.5) + v - T(1.5) * v2) * w_h + bb2 * dww;
      d3_[q] = T(0.5) * v2 * w_h + bb3 * dww;
      b0_[q] = bb0 * ww; b1_[q] = bb1 * ww; b2_[q] = bb2 * ww; b3_[q] = bb3 * ww;
    }
  }

  void get(int64_t q, Pair<T>& p) const {
    p.r = r[q]; p.u[0] = u0[q]; p.u[1] = u1[q]; p.u[2] = u2[q]; p.w = w[q]; p.dw = dw[q];
    p.e[0] = e0[q]; p.e[1] = e0[q] * u0[q]; p.e[2] = e0[q] * u1[q]; p.e[3] = e0[q] * u2[q];
    p.b[0] = b0[q]; p.b[1] = b1[q]; p.b[2] = b2[q]; p.b[3] = b3[q];
    p.db[0] = d0[q]; p.db[1] = d1[q]; p.db[2] = d2[q]; p.db[3] = d3[q];
    p.cs_r = cs_r[q]; p.cds = cds[q];
    p.bin = row[q] + static_cast<int64_t>(k[q]);
  }
};

// Where r_ij comes from. Training batches carry padded displacements r_ij [N, S, 3] and a mask;
// MD carries positions, a Verlet list (index [N, W], -1 = padding, rows grouped per atom) and the
// periodic shift vectors [N, W, 3] in double, so no [N, S, 3] tensor is built per step.
template <typename T>
struct PaddedPairs {
  const T* rij; const bool* mask;
  bool get(int64_t, int64_t ij, T* out) const {
    if (!mask[ij]) return false;
    out[0] = rij[3 * ij]; out[1] = rij[3 * ij + 1]; out[2] = rij[3 * ij + 2];
    return true;
  }
};

template <typename T>
struct VerletPairs {
  const double* pos; const int64_t* index; const double* shift;
  bool get(int64_t i, int64_t ij, T* out) const {
    const int64_t j = index[ij];
    if (j < 0) return false;
    // in double, then rounded: large periodic coordinates keep their sub-mÅ differences in float32 models
    for (int d = 0; d < 3; ++d) out[d] = static_cast<T>(pos[3 * j + d] - pos[3 * i + d] + shift[3 * ij + d]);
    return true;
  }
};

// f(i, ij, pair) for every real neighbour j of every atom i inside rcut; atoms are split across
// threads, so f may write atom i's rows of a [4, N, n_rows] tensor without atomics.
template <typename T, typename Src, typename F>
void for_each_pair(const Src& src, int64_t n, int64_t s, const torch::Tensor& rows, const torch::Tensor& scale,
                   double rcut_smth, double rcut, int64_t n_basis, F&& f) {
  const int64_t* row_ = rows.data_ptr<int64_t>();
  const T* c_ = scale.data_ptr<T>();
  const Grid<T> grid(rcut_smth, rcut, n_basis);
  at::parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
    PairBlock<T> block(s);
    Pair<T> p;
    T r[3];
    for (int64_t i = lo; i < hi; ++i) {
      block.m = 0;
      for (int64_t j = 0; j < s; ++j) {
        const int64_t ij = i * s + j;
        if (src.get(i, ij, r)) block.add(r, grid, ij, row_[ij]);
      }
      block.compute(c_[i], grid);
      for (int64_t q = 0; q < block.m; ++q) {
        block.get(q, p);
        f(i, block.ij[q], p);
      }
    }
  });
}

template <typename T>
PaddedPairs<T> padded(const torch::Tensor& rij, const torch::Tensor& mask) {
  return {rij.data_ptr<T>(), mask.data_ptr<bool>()};
}

template <typename T>
VerletPairs<T> verlet(const torch::Tensor& pos, const torch::Tensor& index, const torch::Tensor& shift) {
  return {pos.data_ptr<double>(), index.data_ptr<int64_t>(), shift.data_ptr<double>()};
}

// Where row (i, β) of q starts: [4, N, n_rows] for training (component-major, what the autograd
// Function returns) or [N, 4, n_rows] for MD (atom-major: atoms sorted by type are contiguous blocks).
struct Layout {
  int64_t atom, comp;
  static Layout component_major(int64_t n, int64_t n_rows) { return {n_rows, n * n_rows}; }
  static Layout atom_major(int64_t, int64_t n_rows) { return {4 * n_rows, n_rows}; }
  int64_t at(int64_t i, int bta) const { return i * atom + bta * comp; }
};

// the passes below, written once for either source
template <typename T, typename Src>
void add_moments(const Src& src, int64_t n, int64_t s, const torch::Tensor& rows, const torch::Tensor& scale,
                 double rcut_smth, double rcut, int64_t n_basis, Layout lay, T* q_, int64_t* count) {
  for_each_pair<T>(src, n, s, rows, scale, rcut_smth, rcut, n_basis, [&](int64_t i, int64_t, const Pair<T>& p) {
    for (int bta = 0; bta < 4; ++bta) {
      T* qi = q_ + lay.at(i, bta) + p.bin;
      for (int m = 0; m < 4; ++m) qi[m] += p.b[m] * p.e[bta];
    }
    if (count) ++count[i];
  });
}

// sink(i, ij, pair, dL/dr_ij) for every pair inside rcut
template <typename T, typename Src, typename Sink>
void pair_gradients(const Src& src, int64_t n, int64_t s, const torch::Tensor& rows, const torch::Tensor& scale,
                    double rcut_smth, double rcut, int64_t n_basis, Layout lay, const T* g_, Sink&& sink) {
  for_each_pair<T>(src, n, s, rows, scale, rcut_smth, rcut, n_basis, [&](int64_t i, int64_t ij, const Pair<T>& p) {
    T dl_db[4] = {0, 0, 0, 0}, dl_de[4] = {0, 0, 0, 0};
    for (int bta = 0; bta < 4; ++bta) {
      const T* gi = g_ + lay.at(i, bta) + p.bin;
      for (int m = 0; m < 4; ++m) {
        dl_db[m] += gi[m] * p.e[bta];
        dl_de[bta] += gi[m] * p.b[m];
      }
    }
    const T ua = p.u[0] * dl_de[1] + p.u[1] * dl_de[2] + p.u[2] * dl_de[3];
    T dl_dr = p.cds * (dl_de[0] + ua);
    for (int m = 0; m < 4; ++m) dl_dr += dl_db[m] * p.db[m];
    // r̃ = c s (1, u): radial part along u, angular part (I − u uᵀ) a · c s / r
    T grad[3];
    for (int d = 0; d < 3; ++d) grad[d] = p.u[d] * (dl_dr - p.cs_r * ua) + p.cs_r * dl_de[d + 1];
    sink(i, ij, p, grad);
  });
}


}  // namespace lam_lab

// defined in pair_moments.cpp, used by student_md.cpp
torch::Tensor verlet_moments_forward(torch::Tensor& q, torch::Tensor pos, torch::Tensor index, torch::Tensor shift,
                                     torch::Tensor rows, torch::Tensor scale, double rcut_smth, double rcut,
                                     int64_t n_basis, int64_t n_rows);
std::vector<torch::Tensor> verlet_forces(torch::Tensor grad_q, torch::Tensor pos, torch::Tensor index,
                                         torch::Tensor shift, torch::Tensor rows, torch::Tensor scale,
                                         double rcut_smth, double rcut, int64_t n_basis, int64_t n_rows,
                                         bool virial);

// defined in student_md.cpp: adds `student_md` (one MD step of a student) to the module built in pair_moments.cpp
void bind_student_md(pybind11::module_& m);
