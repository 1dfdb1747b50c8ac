"""Specimen collection, accession numbers and chain of custody (built in a later issue)."""
