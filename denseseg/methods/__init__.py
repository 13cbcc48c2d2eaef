"""Methods: a network, its loss and its prediction, trained by the shared training core."""
