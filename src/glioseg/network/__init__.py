"""The 3D U-Net, its ONNX export and engine, run folders and checkpoints, devices."""
