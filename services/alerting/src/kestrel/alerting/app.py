"""The faust App of the alerting service, configured from its settings (its topics, tables and agents are
declared in channels.py and pipeline.py)."""

from __future__ import annotations

from typing import Any

from kestrel.alerting.settings import AlertingSettings
from kestrel.common.runtime.faust_app import make_app as faust_app


def make_app(s: AlertingSettings) -> Any:
    return faust_app(
        s,
        f"{s.topic_prefix}{s.app_id}",
        partitions=s.partitions,
        session_timeout_ms=s.session_timeout_ms,
        data_dir=s.data_dir,
        commit_interval_s=s.commit_interval_s,
    )
