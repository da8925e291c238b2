"""The only layer that touches ansible-runner (and Ansible's Python API): run, ingest, recover."""
