// Conditional (autoregressive) action masks: a unit chooses [action type, target], and which
// targets are legal depends on the type.
//
//   type 0 = move:   the target is one of the 8 neighbouring cells that is free;
//   type 1 = attack: the target is a neighbouring cell holding an enemy;
//   type 2 = wait:   no target (the target head is unused and sampled as -1).
//
// A type is legal only if it has a legal target (a surrounded unit cannot move). The policy
// samples the type first, then the target from the softmax of the target logits over the
// targets legal for that type. The program samples 20000 actions for two units, prints how often
// each (type, target) came out next to its probability exp(conditional_log_prob), and checks
// that no illegal joint action was ever drawn. It also builds the same rule as a lookup table
// from the joint mask (3 x 8 joint actions) and checks that it draws the same joint actions.
//
// ctest-pass: illegal joint actions sampled: 0
// ctest-pass: table from the joint mask draws the same joint actions: yes
#include <cmath>
#include <cstdio>
#include <vector>

#include <emask/rl/conditional.hpp>

using emask::action_matrix;
using emask::action_prefix;
using emask::action_space;
using emask::bool_matrix;
using emask::Index;
using emask::row_matrix;

namespace {

const char* const kDirections[8] = {"N", "NE", "E", "SE", "S", "SW", "W", "NW"};
const char* const kTypes[3] = {"move", "attack", "wait"};

// The 8 neighbours of each unit, clockwise from north: '.' free, '#' wall, 'E' enemy.
const char* const kBoards[2] = {".#E.#..E", "######.#"};

// Rows [0, per_unit) of the batch are unit 0, the next per_unit rows unit 1.
constexpr Index per_unit = 10000;
Index unit_of(Index row) { return row / per_unit; }

bool target_legal(Index unit, Index type, Index target) {
  const char cell = kBoards[unit][target];
  return type == 0 ? cell == '.' : type == 1 ? cell == 'E' : false;
}

bool type_legal(Index unit, Index type) {
  if (type == 2) return true;
  for (Index t = 0; t < 8; ++t)
    if (target_legal(unit, type, t)) return true;
  return false;
}

}  // namespace

int main() {
  const action_space space = action_space::multi_discrete({3, 8});  // [type, target]
  const Index batch = 2 * per_unit;

  // The rule as two callables: which values are legal given the prefix, and whether the target
  // head is used at all (not after "wait").
  const auto rule = emask::conditional_from_callback(
      space,
      [&](Index b, Index head, action_prefix prefix, Index a) {
        return head == 0 ? type_legal(unit_of(b), a) : target_legal(unit_of(b), prefix[0], a);
      },
      [](Index, Index head, action_prefix prefix) { return head == 0 || prefix[0] != 2; });

  // Logits as a network would emit them: [type logits | target logits] per row. Unit 0 likes
  // attacking; both units put a large logit on north (a wall for unit 1: masked, never drawn).
  row_matrix<float> logits(batch, space.width());
  for (Index b = 0; b < batch; ++b) {
    const bool first = unit_of(b) == 0;
    logits.row(b) << (first ? 0.2f : 0.5f), (first ? 1.0f : 3.0f), -0.5f,  //
        2.0f, 0.0f, 0.5f, 0.0f, 0.0f, 1.0f, -1.0f, 0.3f;
  }

  const action_matrix actions = emask::conditional_sample(logits, rule, {2024, 0});
  const Eigen::VectorXf log_prob = emask::conditional_log_prob(logits, rule, actions);
  const Eigen::VectorXf entropy = emask::conditional_entropy(logits, rule, actions);

  // The joint mask over the 24 flattened actions (index = type * 8 + target; "wait" is type 2
  // with target 0), and the same rule as per-row lookup tables built from it.
  const bool_matrix joint = emask::conditional_to_joint(rule, batch);
  const emask::conditional_table table = emask::conditional_table::from_joint(space, joint);
  const action_matrix from_table = emask::conditional_sample(logits, table, {2024, 0});
  const emask::index_vector j_rule = emask::joint_action_index(space, actions);
  const emask::index_vector j_table = emask::joint_action_index(space, from_table);

  Index illegal = 0;
  for (Index b = 0; b < batch; ++b) illegal += joint(b, j_rule[b]) ? 0 : 1;

  for (Index unit = 0; unit < 2; ++unit) {
    std::printf("unit %ld, neighbours N NE E SE S SW W NW = %s\n", static_cast<long>(unit),
                kBoards[unit]);
    std::vector<Index> count(24, 0);
    std::vector<float> prob(24, 0.0f);
    double mean_entropy = 0.0;
    for (Index b = unit * per_unit; b < (unit + 1) * per_unit; ++b) {
      ++count[static_cast<std::size_t>(j_rule[b])];
      prob[static_cast<std::size_t>(j_rule[b])] = std::exp(log_prob[b]);
      mean_entropy += entropy[b] / static_cast<double>(per_unit);
    }
    std::printf("  %-7s %-6s %8s %10s\n", "type", "target", "drawn", "expected");
    for (Index j = 0; j < 24; ++j) {
      if (!joint(unit * per_unit, j)) continue;
      const Index type = j / 8, target = j % 8;
      std::printf("  %-7s %-6s %8ld %10.0f\n", kTypes[type], type == 2 ? "-" : kDirections[target],
                  static_cast<long>(count[static_cast<std::size_t>(j)]),
                  static_cast<double>(prob[static_cast<std::size_t>(j)]) * per_unit);
    }
    std::printf("  mean entropy at the sampled prefix (estimates H(pi)): %.3f nats\n",
                mean_entropy);
  }
  std::printf("illegal joint actions sampled: %ld\n", static_cast<long>(illegal));
  std::printf("table from the joint mask draws the same joint actions: %s\n",
              j_rule == j_table ? "yes" : "no");
  return illegal == 0 && j_rule == j_table ? 0 : 1;
}
