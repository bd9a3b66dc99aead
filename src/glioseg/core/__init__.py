"""Below everything: settings and their defaults, label conventions, the input error, safe file writing, small
geometry, rigid registration, the version. Imports nothing of glioseg's outside core.
"""
