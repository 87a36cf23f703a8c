"""A tiny FDM configuration shared by the FDM tests (fast to build and run)."""

from morobot.fdm.heightscan import ScanConfig

SMALL = dict(
    scan=ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2),
    cnn_channels=(4, 8, 8, 8),
    scan_features=16,
    history_hidden=16,
    context_dim=24,
    predictor_hidden=16,
    ensemble_size=3,
)
