"""InferenceService admission for OME (ome.io/v1beta1) and KServe (serving.kserve.io/v1beta1)."""
