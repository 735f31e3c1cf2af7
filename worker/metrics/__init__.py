"""Prometheus metrics of the fleet: the catalogue of every metric, the stores the workers'
notes are flushed to, and the collector that `marketscan metrics` serves.

Layers: beside chain, state and notify. markets and db sit below and never import this
room; they note what they measure through worker.observe, which this room drains.
"""
