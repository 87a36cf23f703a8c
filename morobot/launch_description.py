"""Build a ``launch.LaunchDescription`` for one graph of :mod:`morobot.graph` (real launch API).

Used by ``launch/*.launch.py`` on ROS installs; needs the ``launch`` and ``launch_ros`` packages.
"""

from morobot.graph import GRAPHS, resolve


def generate(graph: str):
    """Declare the graph's launch arguments and start its nodes with ``launch_ros.actions.Node``."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def _nodes(context, *args, **kwargs):
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in GRAPHS[graph].arguments}
        return [
            Node(
                package="morobot",
                executable=node.spec.executable,
                name=node.spec.name,
                namespace=node.namespace,
                parameters=[str(node.params_file), node.overrides],
                remappings=node.remappings,
                output="screen",
                emulate_tty=True,
            )
            for node in resolve(graph, values)
        ]

    arguments = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
                 for a in GRAPHS[graph].arguments]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])
