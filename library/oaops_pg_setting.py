#!/usr/bin/python
# Copyright (c) oaops contributors
# Apache License 2.0 (see pyproject.toml)
"""Set one PostgreSQL server parameter with ALTER SYSTEM, then reload (or say a restart is due)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oaops_pg_setting
short_description: Change a PostgreSQL parameter (ALTER SYSTEM) and apply it with a reload, in one call
version_added: "0.1.0"
description:
  - Reads the parameter from C(pg_settings) (value, unit, context, pending restart), compares it with
    O(value), and only when they differ runs C(ALTER SYSTEM SET) (or C(RESET) when O(value) is empty)
    and C(SELECT pg_reload_conf()). C(changed) is true only when the setting was altered.
  - "Parameters whose context is C(postmaster) need a server restart: the module reports
    C(restart_required) and leaves the restart to the caller (the role's handler)."
  - O(reload_only=true) only reloads the configuration (after a snapshot of C(postgresql.auto.conf) was
    put back) and reports C(changed=false).
  - Talks to the server with C(psql) as O(login_user); no password appears on a command line
    (use a C(.pgpass) file or trust / peer authentication).
  - The diff names C(postgresql.auto.conf) in the server's data directory, the file ALTER SYSTEM writes,
    so a caller can snapshot it before the change.
options:
  name:
    description: Parameter name, e.g. C(log_min_duration_statement).
    type: str
    default: ""
  value:
    description: New value as PostgreSQL reads it (C(250), C(250ms), C(on)); empty resets to the default.
    type: str
    default: ""
  reload_only:
    description: Only reload the server configuration.
    type: bool
    default: false
  login_host:
    description: Server host or socket folder.
    type: str
    default: 127.0.0.1
  port:
    description: Server port.
    type: int
    default: 5432
  login_user:
    description: A superuser (ALTER SYSTEM needs one).
    type: str
    default: postgres
  psql:
    description: The psql client.
    type: str
    default: psql
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author: oaops contributors
"""

EXAMPLES = r"""
- name: Log statements slower than 250 ms
  oaops_pg_setting:
    name: log_min_duration_statement
    value: "250"
"""

RETURN = r"""
oaops:
  description: The parameter before and after.
  returned: always
  type: dict
  contains:
    before:
      description: Setting as C(SHOW) gave it before.
      type: str
    after:
      description: Setting after the change (the planned one in check mode).
      type: str
    context:
      description: pg_settings.context (C(postmaster) needs a restart).
      type: str
    restart_required:
      description: True when the new value waits for a server restart.
      type: bool
    auto_conf:
      description: Path of postgresql.auto.conf on the server.
      type: str
"""

import re

from ansible.module_utils.basic import AnsibleModule

NAME = re.compile(r"^[a-z_][a-z0-9_.]*$")


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "default": ""},
            "value": {"type": "str", "default": ""},
            "reload_only": {"type": "bool", "default": False},
            "login_host": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "default": 5432},
            "login_user": {"type": "str", "default": "postgres"},
            "psql": {"type": "str", "default": "psql"},
        },
        supports_check_mode=True,
    )
    p = module.params
    psql = module.get_bin_path(p["psql"], required=True)
    base = [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", p["login_host"], "-p", str(p["port"]),
            "-U", p["login_user"], "-d", "postgres"]  # fmt: skip

    def sql(statement):
        rc, out, err = module.run_command([*base, "-c", statement], environ_update={"PGCONNECT_TIMEOUT": "10"})
        if rc != 0:
            module.fail_json(
                msg="psql on {}:{} failed: {}".format(p["login_host"], p["port"], err.strip() or out.strip())
            )
        return out.strip()

    data_dir = sql("SHOW data_directory")
    auto_conf = data_dir + "/postgresql.auto.conf"
    if p["reload_only"]:
        if not module.check_mode:
            sql("SELECT pg_reload_conf()")
        module.exit_json(changed=False, oaops={"kind": "pg_setting", "reloaded": not module.check_mode,
                                               "auto_conf": auto_conf})  # fmt: skip
    if not NAME.match(p["name"]):
        module.fail_json(msg="name: {!r} is not a PostgreSQL parameter name".format(p["name"]))
    row = sql(
        "SELECT setting, coalesce(unit, ''), context, boot_val, pending_restart "
        "FROM pg_settings WHERE name = '{}'".format(p["name"])
    )
    if not row:
        module.fail_json(msg="name: {} is not a parameter of this server (see pg_settings)".format(p["name"]))
    _setting, unit, context, boot_val, _pending = row.split("|")
    before = sql("SHOW {}".format(p["name"]))
    # What the server would make of the new value, in its own units, without changing anything.
    wanted = p["value"].strip()
    if wanted:
        quoted = "'" + wanted.replace("'", "''") + "'"
        normal = sql("SELECT set_config('{}', {}, true)".format(p["name"], quoted)) if context in (
            "user", "superuser") else wanted  # fmt: skip
    else:
        normal = boot_val
    current_file = sql("SELECT coalesce(string_agg(setting, ','), '') FROM pg_file_settings "
                       "WHERE name = '{}' AND sourcefile LIKE '%postgresql.auto.conf'".format(p["name"]))  # fmt: skip
    differs = (normal != before) if wanted else bool(current_file)
    restart = context == "postmaster" and differs
    payload = {
        "kind": "pg_setting", "name": p["name"], "before": before, "after": normal if differs else before,
        "unit": unit, "context": context, "restart_required": restart, "auto_conf": auto_conf,
        "check_mode": module.check_mode,
    }  # fmt: skip
    diff = {
        "before_header": auto_conf, "after_header": auto_conf,
        "before": "{} = {}\n".format(p["name"], before), "after": "{} = {}\n".format(p["name"], payload["after"]),
    }  # fmt: skip
    if differs and not module.check_mode:
        if wanted:
            sql("ALTER SYSTEM SET {} = {}".format(p["name"], "'" + wanted.replace("'", "''") + "'"))
        else:
            sql("ALTER SYSTEM RESET {}".format(p["name"]))
        sql("SELECT pg_reload_conf()")
    module.exit_json(changed=differs, oaops=payload, diff=diff if differs else {})


if __name__ == "__main__":
    main()
