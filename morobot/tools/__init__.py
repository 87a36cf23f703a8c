"""morobot.tools."""
