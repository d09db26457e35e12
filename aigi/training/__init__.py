"""Training: the feature cache, fitting detectors from a config, protocols' training side."""
