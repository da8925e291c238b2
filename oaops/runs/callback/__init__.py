"""Ansible callback plugins oaops puts on ANSIBLE_CALLBACK_PLUGINS for the runs it starts
(oaops_events.py, loaded by ansible-playbook from this folder, not imported by oaops)."""
