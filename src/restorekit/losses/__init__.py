"""restorekit.losses"""
