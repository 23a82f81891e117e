"""restorekit.serve"""
