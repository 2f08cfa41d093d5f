// Built by tools/ci/no_exceptions_tests.sh with -fno-exceptions: the kernels, random masks and
// RL helpers compile and run without exceptions, and a bad argument to each of them ends in the
// default handler: the message on stderr, then abort().
//   no_exceptions_kernels            runs every entry point on good input, prints "ok"
//   no_exceptions_kernels CASE       makes call CASE with a bad argument (must abort)
#include <cstdio>
#include <cstring>
#include <vector>

#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/kernels/merge.hpp>
#include <emask/kernels/softmax.hpp>
#include <emask/random/mlm.hpp>
#include <emask/reference.hpp>
#include <emask/rl/action_mask.hpp>
#include <emask/rl/dqn.hpp>
#include <emask/rl/policy.hpp>

using emask::Index;
using fmat = emask::row_matrix<float>;

int main(int argc, char** argv) {
  const char* c = argc > 1 ? argv[1] : "";
  const fmat x = fmat::Random(6, 9), q = fmat::Random(6, 8), k = fmat::Random(9, 8),
             v = fmat::Random(9, 4);
  fmat out(6, 9), att(6, 4);
  Eigen::VectorXf lse(6);
  const auto mask = emask::causal::bottom_right(6, 9) & emask::key_padding::from_lengths({8}, 9);
  if (!std::strcmp(c, "softmax_out")) {
    fmat wrong(5, 9);
    emask::masked_softmax(x, mask, wrong);
  } else if (!std::strcmp(c, "softmax_scale")) {
    emask::softmax_options o;
    o.scale = std::numeric_limits<double>::quiet_NaN();
    emask::masked_softmax(x, mask, out, o);
  } else if (!std::strcmp(c, "attention_k")) {
    const fmat k_bad = fmat::Random(9, 7);
    emask::masked_attention(q, k_bad, v, mask, att);
  } else if (!std::strcmp(c, "attention_offset")) {
    emask::attention_options o;
    o.k_offset = 4;  // a mask built for 9 keys, asked about [4, 13)
    emask::masked_attention(q, k, v, mask, att, o);
  } else if (!std::strcmp(c, "merge")) {
    std::vector<fmat> parts;
    std::vector<emask::lse_vector<float>> lses;
    emask::merge_attention(parts, lses, att, lse);
  } else if (!std::strcmp(c, "mlm_vocabulary")) {
    emask::mlm_options o;  // no vocabulary
    emask::mlm_mask(emask::token_matrix::Constant(2, 5, 3), o);
  } else if (!std::strcmp(c, "rl_no_legal")) {
    const emask::bool_matrix legal = emask::bool_matrix::Constant(2, 3, false);
    emask::masked_q_argmax(fmat(fmat::Ones(2, 3)), legal);
  } else if (c[0] != '\0') {
    std::fprintf(stderr, "unknown case %s\n", c);
    return 2;
  } else {
    const auto softmaxes = [&](auto variant) {
      emask::masked_softmax(variant, x, mask, out, lse);
      emask::masked_log_softmax(variant, x, mask, out, lse);
    };
    softmaxes(emask::reference::naive);
    softmaxes(emask::fused);
    softmaxes(emask::tiled);
    emask::masked_attention(emask::reference::naive, q, k, v, mask, att, lse);
    emask::masked_attention(emask::tiled, q, k, v, mask, att, lse);
    emask::masked_attention(emask::decode, q, k, v, mask, att, lse);
    emask::mlm_options o;
    o.vocabulary = emask::special_tokens(20, {0});
    o.mask_id = 1;
    const emask::mlm_result r = emask::mlm_mask(emask::token_matrix::Constant(2, 5, 3), o);
    const emask::bool_matrix legal = emask::bool_matrix::Constant(2, 3, true);
    const auto a = emask::masked_q_argmax(fmat(fmat::Ones(2, 3)), legal);
    std::printf("ok (%ld ids, action %ld, out %g)\n", static_cast<long>(r.input_ids.size()),
                static_cast<long>(a[0]), static_cast<double>(att.sum()));
    return 0;
  }
  std::printf("UNREACHABLE: case %s returned\n", c);
  return 0;
}
