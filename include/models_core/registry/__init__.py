"""The registry lifecycle: versions moving through their states behind gates, its audit
trail, the ``modelreg`` CLI and the demo registry.
"""
