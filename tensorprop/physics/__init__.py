"""Tensor algebra and physical constraints applied outside the network."""
