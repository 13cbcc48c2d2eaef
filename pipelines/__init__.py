"""The Prefect layer: every DVC stage as a flow, shards as mapped tasks, and the command line.

``python -m pipelines <stage>`` is the ``cmd`` of every stage in ``dvc.yaml``.
"""
