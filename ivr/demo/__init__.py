"""`ivr demo`: a business day of scripted calls through the real controller, on virtual time."""

from ivr.demo.session import DEMO_DB, DemoRun, run_demo

__all__ = ["DEMO_DB", "DemoRun", "run_demo"]
