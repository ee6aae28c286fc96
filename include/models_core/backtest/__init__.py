"""Backtests: a version run over past cycles on the results stored for them (issue 25)."""
