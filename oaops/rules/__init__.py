"""Pure domain rules: record states, who may do what, thresholds. No I/O, no Ansible, no SQL."""
