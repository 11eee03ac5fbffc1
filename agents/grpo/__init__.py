"""The GRPO family (DA-GRPO, GRPO, Dr. GRPO / collaboration-aware tuning, GAPG): the maths as
pure tensor functions (`offload_agents.grpo.functional`); the rollout collector and trainer land
next."""
