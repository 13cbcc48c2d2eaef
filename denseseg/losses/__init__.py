"""Loss terms: segmentation (BCE, Dice), DenseSeg's eq. 4, heatmap regression."""
