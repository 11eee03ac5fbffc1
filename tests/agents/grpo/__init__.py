"""Tests of offload_agents.grpo."""
