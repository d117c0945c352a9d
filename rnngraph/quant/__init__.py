"""Quantised graphs: calibration, the QDQ rewrite and its report (see :mod:`.transform`)."""

from rnngraph.quant.calibrate import Range, calibrate
from rnngraph.quant.transform import QuantReport, quantize, report

__all__ = ["QuantReport", "Range", "calibrate", "quantize", "report"]
