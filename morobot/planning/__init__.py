"""morobot.planning."""
