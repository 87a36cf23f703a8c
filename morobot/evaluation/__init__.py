"""Offline evaluation of the navigation stack: seeded scenarios, lock-step and ROS-graph runs, reports."""
