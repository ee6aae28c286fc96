"""Example DAGs of the kind users write next to the pipeline: consumers of models' results."""
