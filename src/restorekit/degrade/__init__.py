"""restorekit.degrade"""
