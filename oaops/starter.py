"""The oaops.yml that `oaops init` writes (re-exported as oaops.config.starter)."""

from __future__ import annotations


def starter(login: str) -> str:
    """The oaops.yml that `oaops init` writes: the current login as the first group_admin."""
    return f"""\
# oaops site configuration (see docs/architecture.md). Validated against oaops/schemas/oaops.schema.json.
version: 1

# Using units (单位, R8/R10). Hosts belong to a unit through the inventory group unit_<id>.
units:
  - id: hq
    name: Headquarters
    name_zh: 集团总部
  # the branch units of inventories/example (unit_branch_a, unit_branch_b); replace with your own
  - id: branch_a
    name: Branch A
    name_zh: 分支机构A
  - id: branch_b
    name: Branch B
    name_zh: 分支机构B

# People and their roles (R4, R8): technician (系统技术管理人员), system_manager (系统管理负责人),
# group_admin (集团系统管理员), unit_admin (单位系统管理员, needs units), leader (分管领导).
users:
  - login: {login}
    name: {login}
    roles: [group_admin, technician]
    units: [hq]
    # signing_key: ssh-ed25519 AAAA...   # the line of your ~/.ssh/id_ed25519.pub: signs your decisions

# Precedence: these < OAOPS_* environment variables < command-line flags.
settings:
  db_url: sqlite:///var/oaops.db      # or postgresql+psycopg://user@host/db (OAOPS_DB_URL)
  inventory: inventories/local         # this machine as the managed estate
  forks: 10
  runs_dir: var/runs
  timezone: Asia/Shanghai
  site_key: var/keys/site_ed25519      # signs journal checkpoints (oaops init makes it; back it up)
  checkpoints: var/checkpoints.jsonl   # append-only, outside the records database
  # ansible-vault: a password file or client script, never the password (also --vault-id,
  # --vault-password-file, ANSIBLE_VAULT_PASSWORD_FILE). inventories/example's demo password:
  # vault_password_file: inventories/example/vault-password.txt

# Jobs oaops runs by itself (R3.1). Install the ticker once: `oaops schedule install --cron`
# (or --systemd); it calls `oaops schedule run-due` every minute. See docs/schedules.md.
schedules:
  - name: daily-health
    job: health                        # health, backup, backup-verify, audit, report
    cron: "30 7 * * *"                 # 07:30 every day, in the time zone below
    timezone: Asia/Shanghai
    missed: catch_up                   # after downtime: run once to catch up (or: record)
    max_runtime: 30m                   # stopped and recorded as timeout past this
"""
