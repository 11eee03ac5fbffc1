"""Tests of offload_agents.baselines."""
