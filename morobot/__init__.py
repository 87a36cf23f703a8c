"""morobot: ROS 2 stack for learned-dynamics navigation and manipulation.

Pure algorithm modules (``sim``, ``mapping``, ``planning``, ``fdm``, ``feasibility``, ``korr``)
never import rclpy; ROS adapters live in ``morobot.nodes`` and ``morobot.ros``.
"""

__version__ = "0.1.0"
