"""Training-data builders: reconstruction pairs and laundered images (AlignGemini), manipulations (GAMMA)."""
