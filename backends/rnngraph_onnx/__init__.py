"""The ONNX backend of rnngraph (placeholder while being written)."""
