/// \file
/// \brief Umbrella of one module: RL action masks, masked policies, conditional
/// (autoregressive) action masks, DQN and DTQN helpers.
/// Include it instead of <emask/emask.hpp> to parse only this module (and what it needs).
#pragma once

#include "emask/rl/action_mask.hpp"
#include "emask/rl/conditional.hpp"
#include "emask/rl/dqn.hpp"
#include "emask/rl/dtqn.hpp"
#include "emask/rl/policy.hpp"
