"""IP-plane GoIP behaviour model: training code, ONNX file, contract and card."""
