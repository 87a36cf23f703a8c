"""rclpy helpers shared by the nodes: message conversions, parameter declaration, QoS."""
