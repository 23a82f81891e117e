"""restorekit.inference"""
