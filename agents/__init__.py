"""offload_agents: agents for the offload environments (DA-GRPO, GRPO-family and routing
baselines, Co-PLMs). The packages arrive with the later milestones; see docs/."""
