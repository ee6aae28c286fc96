"""One cycle of the registry: where its plan comes from, the DAG it renders, what each model
task does, how results are stored and how the cycle is summed up.
"""
