// Per-layer schedules: which mask each layer of a model uses, and what that means for the KV
// cache. Prints, for four published models, the keys their caches hold per generated token at a
// context of 32000 against a model with only global layers; then runs one decode step of a small
// Gemma 2 style model layer by layer (sliding window on even layers, global on odd, softcap 50)
// with one call site for every layer, and a prompt whose image tokens see each other both ways
// (block_bidirectional).
// ctest-pass: gpt-oss-120b \(36 layers\): 18 sliding \+ 18 global, cache keys [0-9]+ \(0\.50[0-9]*
// of all-global\) ctest-pass: layer 3 \(global, softcap 50\): max \|out - materialized\| =
// [0-9.e-]+ \(ok\) ctest-pass: image tokens 2\.\.5 see each other both ways: yes
#include <cmath>
#include <emask/emask.hpp>
#include <iomanip>
#include <iostream>
#include <string>

using emask::Index;
using mat = emask::row_matrix<float>;

namespace {
const char* kind_name(emask::layer_kind k) {
  switch (k) {
    case emask::layer_kind::sliding: return "sliding";
    case emask::layer_kind::chunked: return "chunked";
    default: return "global";
  }
}

void cache_report(const std::string& name, const emask::layer_schedule& s) {
  const Index context = 32000, step = 1;
  Index local = 0;
  for (Index l = 0; l < s.layers(); ++l) local += s[l].kind != emask::layer_kind::global ? 1 : 0;
  const Index keys = s.total_kv_cache_keys(context, step);
  const double all_global = static_cast<double>(s.layers() * (context + step));
  std::cout << name << " (" << s.layers() << " layers): " << local << " "
            << kind_name(s.pattern()[0].kind) << " + " << s.layers() - local
            << " global, cache keys " << keys << " (" << std::setprecision(3)
            << static_cast<double>(keys) / all_global << " of all-global)\n";
}
}  // namespace

int main() {
  cache_report("gemma-2-9b", emask::layer_schedule::gemma2(42));
  cache_report("gemma-3-27b", emask::layer_schedule::gemma3(62));
  cache_report("gpt-oss-120b", emask::layer_schedule::gpt_oss(36));
  cache_report("llama-4-scout", emask::layer_schedule::llama4(48));

  // One decode step of a 4-layer model with a window of 8: the query is position T - 1.
  const emask::layer_schedule model = emask::layer_schedule::gemma2(4, 8);
  const Index T = 40, D = 16;
  mat q(1, D), k(T, D), v(T, D);
  for (Index i = 0; i < q.size(); ++i) q.data()[i] = 3.f * std::sin(0.37f * static_cast<float>(i));
  for (Index i = 0; i < k.size(); ++i) k.data()[i] = 3.f * std::cos(0.11f * static_cast<float>(i));
  for (Index i = 0; i < v.size(); ++i) v.data()[i] = std::sin(0.05f * static_cast<float>(i));
  emask::attention_options base;
  base.q_offset = T - 1;  // the newest token
  bool ok = true;
  for (Index layer = 0; layer < model.layers(); ++layer) {
    const emask::attention_options o = model.options(layer, base);
    mat out(1, D), want(1, D);
    model.visit(layer, [&](const auto& mask) {
      emask::masked_attention(emask::decode, q, k, v, mask, out, o);
      // The same step with the mask materialized for this position.
      const emask::bool_matrix keep = emask::materialize(mask.offset(T - 1, 0), 1, T);
      emask::attention_options plain = o;
      plain.q_offset = 0;
      emask::masked_attention(emask::tiled, q, k, v, keep, want, plain);
    });
    const float err = (out - want).cwiseAbs().maxCoeff();
    ok = ok && err <= 1e-5f;
    std::cout << "layer " << layer << " (" << kind_name(model[layer].kind) << ", softcap "
              << model[layer].softcap << "): max |out - materialized| = " << err
              << (err <= 1e-5f ? " (ok)" : " (MISMATCH)") << "\n";
  }

  // A prompt of text, 4 image tokens (group 0), text: the image tokens attend both ways.
  const emask::block_bidirectional prompt(emask::id_table({{-1, -1, 0, 0, 0, 0, -1, -1}}));
  const emask::bool_matrix keep = emask::materialize(prompt, 8, 8);
  const bool both_ways = keep.block(2, 2, 4, 4).all() && !keep(1, 2) && !keep(6, 7);
  std::cout << "image tokens 2..5 see each other both ways: " << (both_ways ? "yes" : "no") << "\n";
  return ok && both_ways ? 0 : 1;
}
