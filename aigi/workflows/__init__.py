"""Orchestration on top of the detectors: training a detector end to end (``train``), the evaluation
protocols (``protocols``) and side-by-side comparison with the default rule (``compare``)."""
