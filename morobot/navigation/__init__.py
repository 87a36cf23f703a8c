"""Navigation wiring: the planner's parameters, the factory that builds planner, dynamics and mapper
from them, and the one control core (:mod:`morobot.navigation.controller`) that both the
``mppi_planner`` node and the lock-step evaluation call."""
