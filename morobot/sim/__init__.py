"""morobot.sim."""
