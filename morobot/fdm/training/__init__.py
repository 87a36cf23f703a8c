"""FDM training: the training command and its loss."""
