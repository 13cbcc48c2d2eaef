"""nnU-Net (the ``nnunetv2`` package) as a baseline: export, plan, train, predict, read predictions.

The paper's Table 1 compares DenseSeg with nnU-Net. This package drives the
real ``nnunetv2`` through its Python API: ``export`` writes a uv cache split as
an nnU-Net raw dataset (overlapping structures as regions, ``regions``),
``plan`` fingerprints, plans and preprocesses the 2-D configuration (with
optional demo-size edits of the plan), ``training`` trains through nnU-Net's
own trainer class with the epochs and iterations from params, ``predict``
predicts with nnU-Net's predictor and reads per-structure masks from the
region probabilities. Functions take folders; ``environment`` sets the three
nnU-Net folder variables only for the duration of a call. See docs/nnunet.md.
"""
