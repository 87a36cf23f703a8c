"""Learned perceptive forward-dynamics model (FDM) for the MPPI planner.

Modules (see ``docs/fdm.md``):
    se2         batched SE(2) integration and pose algebra
    heightscan  yaw-aligned robot-centric height scans from height maps or ground-truth worlds
    history     the 9-d proprioceptive history and its fixed-rate buffer
    model       FDMConfig and PerceptiveFDM (encode once per cycle, predict K samples)
    modules/    encoders and the ensemble predictor
    loss        training loss
    dynamics    FDMDynamics: the DynamicsModel the planner uses
    checkpoint  atomic save / strict load
    dataset     shard + manifest format, Dataset, world split
    commands    time-correlated random command sequences
    collect     data collection on the MuJoCo ANYmal simulator
    train       training entry point
    evaluate    evaluation against constant velocity and the no-scan ablation
    benchmark   planning-time benchmark
    synthetic   toy data for tests and smoke runs
"""
