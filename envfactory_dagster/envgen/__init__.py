"""EnvGen: normalized specs -> proposals -> environment specs -> code -> verified registry."""
