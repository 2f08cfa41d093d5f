// Masks a small tokenized batch for BERT pre-training, prints it before and after, and shows
// that the result depends only on (seed, sample id): masking the rows one at a time gives the
// same batch.
// ctest-pass: mlm_batch: reproducible OK
#include <emask/random/mlm.hpp>
#include <emask/random/t5.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
  // A toy WordPiece vocabulary: ids 0-4 are special.
  const std::vector<std::string> vocab = {
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on",  "mat",
      "a",     "dog",   "ran",   "to",    "park",   "in",  "sun", "it",  "was", "warm"};
  const auto V = static_cast<std::int32_t>(vocab.size());

  emask::token_matrix ids(3, 10);
  ids << 2, 5, 6, 7, 8, 5, 9, 3, 0, 0,    //
      2, 10, 11, 12, 13, 5, 14, 3, 0, 0,  //
      2, 17, 18, 19, 15, 5, 16, 3, 0, 0;
  const emask::index_list lengths = {8, 8, 8};

  emask::mlm_options opt;
  opt.vocabulary = emask::special_tokens(V, {0, 1, 2, 3, 4});
  opt.mask_id = 4;
  opt.mlm_probability = 0.3;  // more than BERT's 0.15 so that a short demo shows some masks

  // Where the draws come from: seed 2, and row b is sample 100 + b.
  const emask::random_address at{/*seed=*/2, /*sample=*/100};
  const emask::mlm_result r = emask::mlm_mask(ids, lengths, opt, at);

  auto show = [&](const char* title, const emask::token_matrix& m, bool labels) {
    std::printf("%s\n", title);
    for (emask::Index b = 0; b < m.rows(); ++b) {
      std::printf("  ");
      for (emask::Index t = 0; t < m.cols(); ++t) {
        const std::int32_t id = m(b, t);
        std::printf("%-7s ", labels && id == opt.ignore_index
                                 ? "."
                                 : vocab[static_cast<std::size_t>(id)].c_str());
      }
      std::printf("\n");
    }
  };
  show("before:", ids, false);
  show("after (inputs):", r.input_ids, false);
  show("labels (. = ignored, -100):", r.labels, true);

  // Same result when each row is masked on its own with its sample id.
  bool same = true;
  for (emask::Index b = 0; b < ids.rows(); ++b) {
    const emask::mlm_result one =
        emask::mlm_mask(ids.middleRows(b, 1), {8}, opt, {at.seed, at.sample + std::uint64_t(b)});
    same = same && (one.input_ids == r.input_ids.middleRows(b, 1)).all() &&
           (one.labels == r.labels.middleRows(b, 1)).all();
  }

  // T5: how long the corrupted inputs and targets of 512-token inputs are.
  const emask::t5_lengths t5 = emask::compute_input_and_target_lengths(512, 0.15, 3.0);
  std::printf("T5 span corruption: %ld raw tokens -> 512 input tokens, %ld target tokens\n",
              static_cast<long>(t5.tokens_length), static_cast<long>(t5.targets_length));

  std::printf("mlm_batch: reproducible %s\n", same ? "OK" : "FAILED");
  return same ? 0 : 1;
}
