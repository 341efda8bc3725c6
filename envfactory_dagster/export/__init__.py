"""Exports: SFT rows and formats, RL tasks with their reward, splits and filters, pass@k."""
