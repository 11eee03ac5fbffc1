"""Tests of offload_agents.coplms."""
