"""The surge plan (seed 004): the warning line, the leadership group's decision, the running plan and its end."""
