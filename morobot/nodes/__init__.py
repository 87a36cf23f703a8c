"""Thin rclpy nodes: parameters, subscriptions, conversions, timers. One module per executable."""
