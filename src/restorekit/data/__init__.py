"""restorekit.data"""
