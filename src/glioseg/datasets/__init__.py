"""Cases on disk: the dataset layouts, reading and checking cases, cross-validation splits, preprocessing and its
cache, phantom cohorts, the public sample.
"""
