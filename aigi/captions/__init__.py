"""Captioning (identical for real and fake images), object parsing and concept vocabularies (ITEM)."""
