"""Navigation graph: MuJoCo ANYmal (use_sim), elevation mapper, MPPI planner, FDM monitor.

    ros2 launch morobot navigate.launch.py world:=rough_obstacles use_sim:=true

The nodes and their parameters come from ``morobot.graph`` — the same description ``morobot launch
navigate`` uses on machines without ``launch`` installed.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from morobot.graph import GRAPHS, resolve

GRAPH = "navigate"


def _nodes(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in GRAPHS[GRAPH].arguments}
    return [
        Node(
            package="morobot",
            executable=node.spec.executable,
            name=node.spec.name,
            parameters=[str(node.params_file), node.overrides],
            remappings=node.remappings,
            output="screen",
            emulate_tty=True,
        )
        for node in resolve(GRAPH, values)
    ]


def generate_launch_description():
    arguments = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
                 for a in GRAPHS[GRAPH].arguments]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])
