"""Compatibility fixes for running the 2024 OpenMMLab stack on current torch/numpy."""
