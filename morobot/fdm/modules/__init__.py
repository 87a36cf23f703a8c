"""Network building blocks of the perceptive FDM."""

from morobot.fdm.modules.encoders import HistoryEncoder, ScanEncoder
from morobot.fdm.modules.predictor import EnsemblePredictor

__all__ = ["EnsemblePredictor", "HistoryEncoder", "ScanEncoder"]
