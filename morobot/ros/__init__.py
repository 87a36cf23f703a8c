"""morobot.ros."""
