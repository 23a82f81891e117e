"""restorekit.metrics"""
