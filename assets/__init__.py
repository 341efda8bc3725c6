"""Dagster assets: thin glue over the core, one module per stage group.

Every factory takes the domain partitions (the folders of the resource catalog, read when the
code location loads) and returns its assets; `definitions.py` assembles them.
"""
