"""Legged locomotion: the policy that makes the articulated ANYmal walk (environment, training with rsl-rl, run time)."""
