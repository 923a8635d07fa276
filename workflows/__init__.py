"""Workflow definitions: deterministic orchestration only (no I/O, no wall
clock, no randomness). Side effects live in `activities`."""
