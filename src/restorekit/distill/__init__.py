"""restorekit.distill"""
