#include "unmix/rank/nndsvd.hpp"

#include <cmath>

#include "unmix/model/tucker1.hpp"

namespace unmix {

template <class Model>
void init_nndsvd(const Model& m, Factors& f, const Spectrum& spec, const ConstraintList& consA,
                 const ConstraintList& consB, double fill) {
  const std::size_t R = m.rank(), I = m.mixtures(), Ip = m.rows_local(), i0 = m.row_offset();
  if (spec.sigma.size() != I || spec.U.size() != I * I)
    throw DataError("the spectrum does not belong to this tensor (" + std::to_string(spec.sigma.size()) +
                    " singular values for " + std::to_string(I) + " mixtures)");
  Tensor<double> Uk({Ip, R});
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t i = 0; i < Ip; ++i) Uk(i, r) = spec.U[i0 + i + r * I];
  // U_k^T Y(1) on this process's columns: row r is sigma_r v_r^T.
  Tensor<double> V = m.AtY(Uk);
  const std::size_t n = V.size() / std::max<std::size_t>(R, 1);
  f.A = Tensor<double>({Ip, R});
  f.B = Tensor<double>(m.b_local_shape());
  for (std::size_t r = 0; r < R; ++r) {
    const double s = spec.sigma[r];
    if (!(s > 0)) continue; // a zero singular value: the source stays 0 (then `fill`)
    double xp = 0, xn = 0, yp = 0, yn = 0;
    for (std::size_t i = 0; i < Ip; ++i) {
      const double x = Uk(i, r);
      (x > 0 ? xp : xn) += x * x;
    }
    for (std::size_t j = 0; j < n; ++j) {
      const double y = V[r + j * R] / s;
      (y > 0 ? yp : yn) += y * y;
    }
    xp = std::sqrt(m.sum_A(xp));
    xn = std::sqrt(m.sum_A(xn));
    yp = std::sqrt(m.sum_B(yp));
    yn = std::sqrt(m.sum_B(yn));
    const double mp = xp * yp, mn = xn * yn;
    // The first triplet can be taken with either sign; choosing the larger part is the same rule.
    const bool pos = mp >= mn;
    const double nx = pos ? xp : xn, ny = pos ? yp : yn, scale = std::sqrt(s * (pos ? mp : mn));
    if (!(nx > 0) || !(ny > 0)) continue;
    for (std::size_t i = 0; i < Ip; ++i) {
      const double x = pos ? Uk(i, r) : -Uk(i, r);
      f.A(i, r) = x > 0 ? scale * x / nx : 0.0;
    }
    for (std::size_t j = 0; j < n; ++j) {
      const double y = (pos ? V[r + j * R] : -V[r + j * R]) / s;
      f.B[r + j * R] = y > 0 ? scale * y / ny : 0.0;
    }
  }
  if (fill != 0) {
    for (double& v : f.A.span())
      if (v == 0) v = fill;
    for (double& v : f.B.span())
      if (v == 0) v = fill;
  }
  apply_constraints_once(m, f, consA, consB);
}

template void init_nndsvd(const Tucker1<float>&, Factors&, const Spectrum&, const ConstraintList&,
                          const ConstraintList&, double);
template void init_nndsvd(const Tucker1<double>&, Factors&, const Spectrum&, const ConstraintList&,
                          const ConstraintList&, double);

} // namespace unmix
