"""Train Model: datasets and spatial splits, losses, the trainer, checkpoints, ONNX export, report.

The only torch user in core (besides the networks in ``models/``)."""
