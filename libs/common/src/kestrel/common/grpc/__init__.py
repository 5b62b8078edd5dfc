"""gRPC server bootstrap and interceptors."""
