"""restorekit.evaluation"""
