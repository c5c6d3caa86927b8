"""The steps reports are built from: each module turns one section's statistics into flowables."""
