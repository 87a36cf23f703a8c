"""morobot.fdm."""
