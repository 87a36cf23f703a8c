"""Navigation graph: MuJoCo ANYmal (use_sim), elevation mapper, MPPI planner, FDM monitor (use_monitor).

    ros2 launch morobot navigate.launch.py world:=rough_obstacles use_sim:=true
    ros2 launch morobot navigate.launch.py use_sim:=false use_sim_time:=false     # real robot

Nodes and parameters come from ``morobot.graph`` — the same description ``morobot launch navigate``
uses on machines without ``launch`` installed.
"""

from morobot.launch_description import generate


def generate_launch_description():
    return generate("navigate")
