#!/usr/bin/env bash
# The compile-time check of the redesign issue: the g++ CPU time (user + sys) of a user
# translation unit that includes <emask/emask.hpp> and makes one masked_attention call, as a
# ratio to a TU that includes <Eigen/Dense> and does one 64 x 64 product, both -O2 -fopenmp -c,
# measured alternately (3 rounds by default) in one run so that the ratio is of this machine.
#
#   bash tools/compile_time.sh [ROUNDS] [INCLUDE_DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-3}
inc=${2:-$root/include}
cxx=${CXX:-g++}
eigen=$(pkg-config --cflags-only-I eigen3 2>/dev/null | sed 's/-I//' | xargs || true)
eigen=${eigen:-/usr/include/eigen3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/eigen.cpp" <<'CPP'
#include <Eigen/Dense>
Eigen::MatrixXf run(const Eigen::MatrixXf& a, const Eigen::MatrixXf& b) {
  Eigen::Matrix<float, 64, 64> x = a.topLeftCorner<64, 64>(), y = b.topLeftCorner<64, 64>();
  return x * y;
}
CPP
cat > "$work/emask.cpp" <<'CPP'
#include <emask/emask.hpp>
void run(const emask::row_matrix<float>& q, const emask::row_matrix<float>& k,
         const emask::row_matrix<float>& v, emask::row_matrix<float>& o) {
  emask::masked_attention(q, k, v, emask::causal(), o);
}
CPP
for _ in $(seq "$rounds"); do
  for tu in eigen emask; do
    /usr/bin/time -f "$tu %U %S" "$cxx" -std=c++17 -O2 -fopenmp -I"$inc" -isystem "$eigen" \
      -c "$work/$tu.cpp" -o /dev/null 2>&1 | tail -1
  done
done | awk '{t[$1] += $2 + $3; n[$1]++}
  END {
    printf "eigen 64x64 product TU: %.2f s CPU (mean of %d)\n", t["eigen"] / n["eigen"], n["eigen"]
    printf "emask masked_attention TU: %.2f s CPU (mean of %d)\n", t["emask"] / n["emask"], n["emask"]
    printf "ratio %.2f (target <= 1.5)\n", (t["emask"] / n["emask"]) / (t["eigen"] / n["eigen"])
  }'
