#!/usr/bin/env bash
# CI row perf: every kernel against this machine's own limits, measured beside it in one
# process (bench/perf/emask_perf.cpp, Release -O3 -march=native): masked softmax against a copy
# of the scores, tiled attention against a register-resident FMA loop, decode against one read
# of K and V, RL masked sampling against unmasked softmax + sample, MLM masking against a pass
# over the tokens, and 2-thread speedups. A check fails only when its ratio is 2.5x worse than
# its target, after 3 tries. Prints every ratio; about 1 minute. Build dir: build/ci-perf.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
EMASK_BUILD_DIR=build/ci-perf bash tools/perf.sh
