"""One model (or module) per kind of bad input, beside healthy models; see faults/bad_inputs.py.

``broken_import`` fails to import and ``long_model_id`` declares a model_id the registry
cannot hold: discovery must report both by name and still load every other module.
"""
