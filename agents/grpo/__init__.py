"""The GRPO family: DA-GRPO, GRPO (task tuning only), collaboration-aware tuning (Dr. GRPO with
the hierarchical reward) and GAPG, as one trainer with pluggable pieces.

- `offload_agents.grpo.functional`: the maths as pure tensor functions.
- `GRPOConfig`: the algorithm and its hyper-parameters.
- `RolloutCollector`: drives the vectorised text environment (groups of G copies seeded alike,
  one shared cloud cache, one batched ``generate`` call per step).
- `GRPOTrainer`: orchestrates collection, advantages, the loss on the policy's own tokens, the
  optimizer step and the dual update; checkpoints resume exactly.
"""

from offload_agents.grpo.config import ALGORITHMS, GRPOConfig
from offload_agents.grpo.rollout import Rollout, RolloutCollector
from offload_agents.grpo.trainer import GRPOTrainer

__all__ = ["ALGORITHMS", "GRPOConfig", "GRPOTrainer", "Rollout", "RolloutCollector"]
