// Structured output: a grammar engine (xgrammar, outlines, vLLM) hands over one bitmask row per
// sequence, ceil(V / 32) 32-bit words with token v allowed at bit v % 32 of word v / 32. emask
// reads those words in place as a mask: masked softmax over the logits, then a draw that can
// only be an allowed token. The vocabulary (50) is not a multiple of 32: the padding bits of the
// last word are set here on purpose and must never count as allowed.
// ctest-pass: sequence 0: 10 allowed tokens, probability mass on them 1
// ctest-pass: sequence 1: 2 allowed tokens, probability mass on them 1
// ctest-pass: every draw allowed: yes
#include <cmath>
#include <cstdint>
#include <emask/emask.hpp>
#include <iostream>
#include <vector>

using emask::Index;

int main() {
  const Index V = 50, batch = 2, wpr = (V + 31) / 32;  // 2 words per row
  std::vector<std::int32_t> words(static_cast<std::size_t>(batch * wpr), 0);
  const auto allow = [&](Index row, Index token) {
    auto& w = words[static_cast<std::size_t>(row * wpr + token / 32)];
    w = static_cast<std::int32_t>(static_cast<std::uint32_t>(w) | (1u << (token % 32)));
  };
  for (Index t = 10; t < 20; ++t) allow(0, t);  // sequence 0: a digit (tokens 10..19)
  allow(1, 3);                                  // sequence 1: a closing brace or end of text
  allow(1, 49);
  for (Index row = 0; row < batch; ++row)  // garbage in the padding bits 50..63
    words[static_cast<std::size_t>(row * wpr + 1)] |= static_cast<std::int32_t>(0xFFFC0000u);

  emask::row_matrix<float> logits(batch, V);
  for (Index i = 0; i < logits.size(); ++i)
    logits.data()[i] = std::sin(0.7f * static_cast<float>(i));
  const emask::token_bitmask grammar(words.data(), batch, wpr, V);
  emask::row_matrix<float> probs(batch, V);
  emask::masked_softmax(logits, grammar, probs);

  const emask::bool_matrix allowed = grammar.to_bool();
  for (Index row = 0; row < batch; ++row) {
    float mass = 0;
    for (Index t = 0; t < V; ++t)
      if (allowed(row, t)) mass += probs(row, t);
    std::cout << "sequence " << row << ": " << allowed.row(row).count()
              << " allowed tokens, probability mass on them " << std::round(mass * 1e5f) / 1e5f
              << "\n";
  }
  bool ok = true;
  for (std::uint64_t step = 0; step < 100; ++step) {
    const emask::action_matrix draw =
        emask::masked_sample(logits, emask::action_mask::discrete(allowed), {2026, step});
    for (Index row = 0; row < batch; ++row) ok = ok && allowed(row, draw(row, 0));
  }
  std::cout << "every draw allowed: " << (ok ? "yes" : "NO") << "\n";
  return ok ? 0 : 1;
}
