"""morobot.korr."""
