"""Model packages the faults run, named in ``models_package`` like any user's package.

``faults.models.steady`` holds well-behaved models with knobs a fault turns through their
version's params (output size, a pace that stretches persistence, a sleep); ``faults.models.bad``
holds one model per kind of bad input, beside healthy ones. Never the product's example models.
"""
