"""The data catalog around the assets: column documentation, per-stage code versions, analyst views."""
