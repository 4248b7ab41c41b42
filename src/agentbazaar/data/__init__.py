"""Datasets: content addressing (CIDv1), the dataset registry, licences, contributions, lineage."""
