"""Semi-supervised label propagation (paper, section 3.1): from a few manually
segmented radiographs to masks of all 17 bones on every image, by training a
segmentation network, refining its predictions and keeping the confident ones
as pseudo-labels for the next round."""
