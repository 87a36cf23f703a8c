"""Learned perceptive forward-dynamics model (FDM) for the MPPI planner.

Split by role (see ``docs/fdm.md``). What a robot loads at run time, in this package:
    se2         batched SE(2) integration and pose algebra
    heightscan  yaw-aligned robot-centric height scans from height maps or ground-truth worlds
    history     the 9-d proprioceptive history and its fixed-rate buffer
    model       FDMConfig and PerceptiveFDM (encode once per cycle, predict K samples)
    modules/    encoders and the ensemble predictor
    dynamics    FDMDynamics: the DynamicsModel the planner uses
    checkpoint  atomic save / strict load
Data (``fdm.data``): dataset (shard + manifest format, Dataset, world split), commands
(time-correlated random command sequences), collect (collection on the MuJoCo ANYmal), merge,
rosbag (rosbag2 conversion), synthetic (toy data for tests and smoke runs).
Training (``fdm.training``): train (the entry point), loss.
Evaluation (``fdm.evaluation``): evaluate (against constant velocity and the no-scan ablation),
benchmark (planning time).
"""
