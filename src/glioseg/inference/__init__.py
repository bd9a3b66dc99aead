"""Segmenting: the sliding window, probabilities to labels, what an input is, `glioseg predict`, raw input back on its
native grids.
"""
