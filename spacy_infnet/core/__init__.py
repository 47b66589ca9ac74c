"""Torch-only core (never imports spaCy): the CRF energy, chain dynamic programs, feature
networks and decoders of Tu & Gimpel (NAACL 2019)."""
