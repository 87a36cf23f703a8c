"""morobot.feasibility."""
