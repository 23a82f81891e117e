"""restorekit.export"""
