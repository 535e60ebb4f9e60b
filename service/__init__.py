"""The running service around the rules: settings, reference and demo data, background loops."""
