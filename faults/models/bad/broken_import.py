"""A module that fails to import: discovery must name it and load the other modules."""

raise ImportError("faults: this module is broken on purpose")
