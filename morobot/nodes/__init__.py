"""morobot.nodes."""
