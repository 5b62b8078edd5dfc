"""Kestrel devstack."""

import os

# The stack, its tests and the bench start service processes (fork, then exec) from processes that hold live gRPC
# channels. With gRPC's fork support on, grpcio 1.80-1.83 restarts its poller in the child, whose epoll fd
# Popen's close_fds has closed: the child aborts before exec (grpc/grpc#43055; seen here as a service exiting
# with -6 and "epoll_wait error: Bad file descriptor"). Nothing here uses gRPC across a fork, so it is off;
# set before grpc is imported, which reads it then, and inherited by the services.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
