"""Fault drill: traffic, a seeded schedule of faults, then every record counted (`kestrel-stack drill`)."""
