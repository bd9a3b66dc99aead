"""Label maps scored and measured: metrics, the BraTS lesion-wise rules, per-lesion measurements, `glioseg evaluate`,
figures.
"""
