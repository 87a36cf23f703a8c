"""Manipulation graph: MuJoCo Panda (use_sim), feasibility checker (filter), KORR policy (use_policy).

    ros2 launch morobot manipulate.launch.py task:=push use_sim:=true

Nodes and parameters come from ``morobot.graph`` — the same description ``morobot launch manipulate``
uses on machines without ``launch`` installed.
"""

from morobot.launch_description import generate


def generate_launch_description():
    return generate("manipulate")
