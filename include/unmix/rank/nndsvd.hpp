#pragma once
// NNDSVD start (Boutsidis & Gallopoulos 2008) for Tucker-1 from the spectrum of Y(1): the leading left
// singular vector u_1 and v_1 = Y(1)^T u_1 / sigma_1 give the first source (their absolute values); for
// each further triplet the larger of the products of the norms of the positive parts and of the
// negative parts is kept, normalized, and scaled by sqrt(sigma_j * that product).
#include "unmix/constraints/constraints.hpp"
#include "unmix/dist/svd.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix {

/// Fills f (the model's local blocks) from `spec` (unfolding_spectrum of the model's data) and applies
/// the constraints once. Entries that come out exactly 0 are set to `fill` (0 keeps them; the NNDSVDa
/// variant uses the mean of Y). Collective over the model's communicator.
template <class Model>
void init_nndsvd(const Model& m, Factors& f, const Spectrum& spec, const ConstraintList& consA,
                 const ConstraintList& consB, double fill = 0.0);

} // namespace unmix
