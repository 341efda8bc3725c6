"""Runtime: the environment contract and the API to load and run verified environments."""
