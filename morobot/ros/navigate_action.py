"""Nav2's ``navigate_to_pose`` action (nav2_msgs/action/NavigateToPose) on the planner, where
``nav2_msgs`` is importable (a ROS install with Nav2; it is no PyPI wheel).

A thin adapter: the planner node decides (:meth:`start` hands it the goal pose and gets an error or
None; :meth:`update` is called every control cycle with the planner's state); this class speaks the
action protocol: accept or reject, feedback every cycle (current pose, distance remaining, navigation
time, an estimate of the time remaining), and the end: succeeded when the goal is reached, canceled
on a cancel request (the robot stops), aborted when a newer goal (action or ``goal_pose`` topic)
replaces it. Everywhere, the ``goal_pose`` topic, the ``cancel_goal`` service and the
``navigate/status`` topic stay.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.task import Future

from morobot.ros.conversions import make_pose_stamped, sec_to_stamp

try:
    from nav2_msgs.action import NavigateToPose
except ImportError:
    NavigateToPose = None

AVAILABLE = NavigateToPose is not None
"""Whether ``nav2_msgs`` is importable here."""


def _duration(seconds: float):
    from builtin_interfaces.msg import Duration

    seconds = max(0.0, float(seconds)) if math.isfinite(seconds) else 0.0
    stamp = sec_to_stamp(seconds)
    return Duration(sec=stamp.sec, nanosec=stamp.nanosec)


class NavigateToPoseServer:
    """The action server.

    Args:
        node: the planner node.
        start: ``start(pose_stamped) -> error or None``: the node validates the pose, moves it into odom
            and makes it the goal.
        cancel: stops the robot and drops the goal.
        now: the node's clock (s).
    """

    def __init__(self, node, start: Callable[[object], Optional[str]], cancel: Callable[[], None],
                 now: Callable[[], float]) -> None:
        if not AVAILABLE:
            raise RuntimeError("nav2_msgs is not importable")
        self.node = node
        self._start, self._cancel, self._now = start, cancel, now
        self._active = None  # (goal handle, future the execute callback waits on, start time)
        self._server = ActionServer(node, NavigateToPose, "navigate_to_pose", execute_callback=self._execute,
                                    goal_callback=lambda _request: GoalResponse.ACCEPT,
                                    cancel_callback=lambda _handle: CancelResponse.ACCEPT)

    async def _execute(self, handle):
        result = NavigateToPose.Result()
        error = self._start(handle.request.pose)
        if error is not None:
            result.error_code, result.error_msg = NavigateToPose.Result.UNKNOWN, error
            handle.abort()
            return result
        self.preempt()  # an older action goal ends here; the topic path already replaced its goal
        done = Future()
        self._active = (handle, done, self._now())
        outcome = await done
        if outcome == "succeeded":
            handle.succeed()
        elif outcome == "canceled":
            handle.canceled()
        else:
            result.error_code, result.error_msg = NavigateToPose.Result.UNKNOWN, outcome
            handle.abort()
        return result

    def _finish(self, outcome: str) -> None:
        if self._active is not None:
            _, done, _ = self._active
            self._active = None
            if not done.done():
                done.set_result(outcome)

    def preempt(self, why: str = "replaced by a newer goal") -> None:
        """End the active action goal (aborted): a newer goal replaced it."""
        self._finish(why)

    def reached(self) -> None:
        """The planner reached the goal: the action goal succeeds."""
        self._finish("succeeded")

    def update(self, pose_xyyaw, goal_xyyaw, speed: float) -> None:
        """Once per control cycle, before the planner decides: a requested cancel stops the robot; else
        feedback from the robot's pose and the goal (odom) and the speed limit (m/s) for the time estimate."""
        if self._active is None:
            return
        handle, _, started = self._active
        if handle.is_cancel_requested:
            self._cancel()
            self._finish("canceled")
            return
        if pose_xyyaw is None or goal_xyyaw is None:
            return
        feedback = NavigateToPose.Feedback()
        now = self._now()
        feedback.current_pose = make_pose_stamped(float(pose_xyyaw[0]), float(pose_xyyaw[1]), float(pose_xyyaw[2]),
                                                  now)
        distance = math.hypot(goal_xyyaw[0] - pose_xyyaw[0], goal_xyyaw[1] - pose_xyyaw[1])
        feedback.distance_remaining = float(distance)
        feedback.navigation_time = _duration(now - started)
        feedback.estimated_time_remaining = _duration(distance / max(speed, 1e-3))
        handle.publish_feedback(feedback)
