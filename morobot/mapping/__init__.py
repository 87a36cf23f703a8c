"""morobot.mapping."""
