"""restorekit.training"""
