"""Whole tasks built from the stages below: cross-validation, follow-up comparison and synthetic follow-ups, the demo,
the HTML report.
"""
