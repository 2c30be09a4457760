"""Drills: the plan rehearsed on its own clock (scenarios from the playbook, injected cues, scorecards)."""
