"""Networks: one architecture per file (the shared UNet backbone, DenseSeg's two heads, heatmap regression)."""
