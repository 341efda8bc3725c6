"""QueryGen: tool-dependency graph -> topology-aware chains -> executed multi-turn trajectories."""
