"""Hypothesis profile for the whole suite: CI and dev machines share their CPUs, so time is not a failure."""

from hypothesis import HealthCheck, settings

# Under load (several test runs on two cores) example generation trips the too_slow health check
# and per-example deadlines although nothing is wrong with the code under test.
settings.register_profile("kestrel", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kestrel")
