"""Tests of offload_agents.slm."""
