"""EnvFactory on Dagster: authentic API resources -> verified stateful tool environments -> trajectories.

The package is the pure core (no Dagster import) except `definitions.py` and `cli.py`.
"""

__version__ = "0.1.0"
