"""Refinement: calibrated implicit-intent queries, each hidden value with an executed grounding proof."""
