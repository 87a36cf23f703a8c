"""FDM evaluation: held-out accuracy against baselines, and the planning-time benchmark."""
