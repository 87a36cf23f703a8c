"""Test-session set-up: isolate DDS traffic to loopback and to a private domain, headless rendering."""

import os
import random

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
# Keep discovery on this machine, in a domain of our own so parallel runs do not cross-talk.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
if "MOROBOT_TEST_DOMAIN" not in os.environ:
    os.environ["MOROBOT_TEST_DOMAIN"] = str(random.Random(os.getpid()).randint(30, 99))
os.environ["ROS_DOMAIN_ID"] = os.environ["MOROBOT_TEST_DOMAIN"]
