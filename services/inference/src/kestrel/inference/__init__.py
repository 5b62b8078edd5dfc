"""Kestrel inference: gRPC Predict over Triton with online features, and the stream scorer."""
