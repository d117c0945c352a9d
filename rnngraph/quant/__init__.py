"""Quantised graphs: calibration, the QDQ rewrite and its report (see :mod:`.transform`)."""

from rnngraph.quant.calibration import Range, calibrate
from rnngraph.quant.integer import to_integer
from rnngraph.quant.transform import QuantReport, convert, prepare_qat, quantize, report

__all__ = [
    "QuantReport",
    "Range",
    "calibrate",
    "convert",
    "prepare_qat",
    "quantize",
    "report",
    "to_integer",
]
