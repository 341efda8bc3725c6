"""Quality: great-expectations 1.x suites, in code, run on asset partitions."""
