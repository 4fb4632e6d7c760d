"""On-device models: one folder per model (training code, ONNX file, card, contract)."""
