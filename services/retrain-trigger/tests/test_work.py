"""The training job as a subprocess: its outcome read, its time limit kept, killed when the service stops."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path

import pytest

from kestrel.retrain_trigger import work
from kestrel.retrain_trigger.runs import TRAINING, Run
from kestrel.retrain_trigger.settings import RetrainTriggerSettings

RUN = Run("r1", "fraud", TRAINING, "ci", 0)


def job(code: str, tmp_path: Path, **overrides) -> RetrainTriggerSettings:
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    return RetrainTriggerSettings(job_command=command, job_env={"PIDFILE": str(tmp_path / "pid")}, **overrides)


async def test_the_jobs_last_json_line_is_its_outcome_and_it_gets_the_run_arguments(tmp_path):
    code = "import json, sys; print('training'); print(json.dumps({'passed': True, 'args': sys.argv[1:]}))"
    result = await work.train(job(code, tmp_path), RUN)
    assert result["kind"] == "job_done" and result["outcome"]["args"][:2] == ["--model", "fraud"]


async def test_a_job_past_its_time_limit_is_killed_and_the_run_fails(tmp_path):
    result = await work.train(job("import time; time.sleep(60)", tmp_path, job_timeout_s=0.5), RUN)
    assert result["kind"] == "job_failed" and result["reason"].startswith("training job ran past")


async def test_a_job_is_killed_when_its_task_is_cancelled(tmp_path):
    code = "import os, time; open(os.environ['PIDFILE'], 'w').write(str(os.getpid())); time.sleep(60)"
    task = asyncio.create_task(work.train(job(code, tmp_path), RUN))
    async with asyncio.timeout(20):
        while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
            await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "pid").read_text()), 0)


async def test_a_missing_command_fails_the_run_in_one_line(tmp_path):
    s = RetrainTriggerSettings(job_command=str(tmp_path / "no-such-job"))
    result = await work.train(s, RUN)
    assert result["kind"] == "job_failed" and "no-such-job" in result["reason"]
