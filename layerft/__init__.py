"""layerft: Hydra-configured sweeps of layer-wise fine-tuning of pre-trained encoders."""

__version__ = "0.1.0"
