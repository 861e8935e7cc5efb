"""Tally client SDK: local signing against a Tally node; never imports `node`."""
