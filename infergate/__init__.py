"""infergate: policy-driven admission and GPU placement for model serving on Kubernetes."""

__version__ = "0.1.0"
