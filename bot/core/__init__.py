"""The small core every part uses: the playbook and settings, the clock, the renderer, text rules, errors."""
