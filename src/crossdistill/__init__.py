"""crossdistill — cross-site relational distillation for lightweight prostate-MRI segmentation."""

__version__ = "0.1.0"
