// Noises a small batch for masked-diffusion language-model training (LLaDA / MDLM): each sequence
// draws a time t, masks every token with probability p = (1 - eps) t + eps, and its masked tokens
// weigh 1 / p in the loss. Row 1 carries a prompt (SFT: never masked), row 2 ends in padding.
// The loss helpers are then applied to made-up per-token negative log-likelihoods.
// ctest-pass: diffusion_lm_batch: prompt never masked OK
// ctest-pass: diffusion_lm_batch: padding never masked OK
// ctest-pass: diffusion_lm_batch: reproducible OK
// ctest-pass: pre-training loss = [0-9]+[.][0-9]+
// ctest-pass: SFT loss = [0-9]+[.][0-9]+
#include <emask/random/diffusion.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
  // A toy vocabulary: id 0 is padding, id 1 is the mask token.
  const std::vector<std::string> vocab = {
      "<pad>", "[M]",  "the", "cat",  "sat", "on",    "a",   "mat", "dog",  "ran",
      "to",    "park", "Q:",  "what", "is",  "2+2",   "A:",  "4",   "it",   "was",
      "warm",  "and",  "sun", "in",   "sky", "birds", "fly", "far", "away", "."};
  const auto V = static_cast<std::int32_t>(vocab.size());

  emask::token_matrix ids(4, 16);
  ids << 2, 3, 4, 5, 6, 7, 29, 2, 8, 9, 10, 2, 11, 29, 18, 19,  // pre-training text
      12, 13, 14, 15, 16, 17, 29, 0, 0, 0, 0, 0, 0, 0, 0, 0,    // prompt "Q: what is 2+2" (4)
      22, 23, 2, 24, 19, 20, 29, 0, 0, 0, 0, 0, 0, 0, 0, 0,     // 7 tokens, then padding
      25, 26, 27, 28, 21, 2, 8, 9, 10, 2, 11, 29, 2, 3, 4, 29;
  const emask::index_list prompt_lengths = {0, 4, 0, 0};
  const emask::index_list lengths = {16, 16, 7, 16};  // row 1: the padded answer is the answer

  emask::diffusion_options opt;
  opt.vocab_size = V;
  opt.mask_id = 1;
  opt.eps = 1e-3;  // LLaDA's default

  // Where the draws come from: seed 7, and row b is sample 40 + b.
  const emask::random_address at{/*seed=*/7, /*sample=*/40};
  const emask::diffusion_result r =
      emask::diffusion_mask_sft(ids, prompt_lengths, lengths, opt, at);

  std::printf("row  t      p      weight  noised tokens (padding shown as .)\n");
  for (emask::Index b = 0; b < r.noisy_ids.rows(); ++b) {
    std::printf("%-4ld %.3f  %.3f  %6.2f  ", static_cast<long>(b), r.t(b), r.p(b), 1.0 / r.p(b));
    for (emask::Index j = 0; j < r.noisy_ids.cols(); ++j) {
      const bool padding = j >= r.lengths[static_cast<std::size_t>(b)];
      std::printf("%s ",
                  padding ? "." : vocab[static_cast<std::size_t>(r.noisy_ids(b, j))].c_str());
    }
    std::printf("\n");
  }

  bool prompt_ok = !r.masked.row(1).head(4).any();
  bool padding_ok =
      !r.masked.row(2).tail(9).any() && (r.weight.row(2).tail(9).array() == 0.0f).all();
  std::printf("diffusion_lm_batch: prompt never masked %s\n", prompt_ok ? "OK" : "FAILED");
  std::printf("diffusion_lm_batch: padding never masked %s\n", padding_ok ? "OK" : "FAILED");

  // The masks depend only on (seed, sample id): rows 2-3 alone, as samples 42-43, are the same.
  const emask::diffusion_result part =
      emask::diffusion_mask_sft(ids.bottomRows(2), {0, 0}, {7, 16}, opt, {7, 42});
  const bool same = (part.masked == r.masked.bottomRows(2)).all();
  std::printf("diffusion_lm_batch: reproducible %s\n", same ? "OK" : "FAILED");

  // Made-up per-token negative log-likelihoods of the original tokens (a model would give
  // cross-entropy here); only the masked positions are read.
  emask::row_matrix<float> nll(4, 16);
  for (emask::Index b = 0; b < 4; ++b)
    for (emask::Index j = 0; j < 16; ++j) nll(b, j) = 0.5f + 0.1f * static_cast<float>((b + j) % 5);
  std::printf("pre-training loss = %.4f  (sum over masked of nll / p, / real tokens)\n",
              emask::diffusion_loss(nll, r));
  std::printf("SFT loss = %.4f  (sum over masked of nll / p / answer length, / rows)\n",
              emask::diffusion_sft_loss(nll, r));
  return prompt_ok && padding_ok && same ? 0 : 1;
}
