"""What every command needs: the site config, the actor, and the records database.

Opening the records also recovers runs a crashed process left behind (DESIGN.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oaops import config as config_mod
from oaops import config_estate, signing
from oaops.config import Config, User
from oaops.config_estate import place
from oaops.errors import PermissionDenied
from oaops.rules import roles
from oaops.runs import vault
from oaops.runs.inventory import InventoryHost
from oaops.runs.recover import Interrupted, Recovered, recover, recover_changes
from oaops.services import registry
from oaops.store import journal
from oaops.store.db import Database, open_database

if TYPE_CHECKING:  # the runners (ansible-runner, ingest, pytest) are imported by the commands that start a run
    from oaops.runs import runner, testinfra
    from oaops.runs.ingest import ProgressFn
    from oaops.runs.nodes import NodePlan


@dataclass
class Context:
    config: Config
    actor: User
    _db: Database | None = None
    recovered: list[Recovered] = field(default_factory=list)
    interrupted: list[Interrupted] = field(default_factory=list)  # changes recovery found dead (issue 15)
    os_login: str = ""  # the OS real user (R7); `actor` is who it acts as
    key: str | None = None  # the private key file a decision is signed with; None: ssh-agent
    via: dict[str, Any] | None = None  # the web console's sign-in (rules.decision.console_via): the site key signs

    def __post_init__(self) -> None:
        vault.use(self.config.settings.vault_ids)  # every inventory read and run of this site decrypts

    @property
    def root(self) -> Path:
        return self.config.root

    @property
    def known_hosts(self) -> Path:
        """The site's SSH known_hosts (issue 15): every run's ssh accepts only the keys in it."""
        return config_estate.known_hosts(self.root, os.environ)

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = open_database(self.config.settings.db_url)
            self.recovered = recover(self._db, self.actor.login)
            self.interrupted = recover_changes(self._db, self.actor.login)
            self._db.identity.update(self.identity())
        return self._db

    def identity(self) -> dict[str, Any]:
        """What every journal entry of this process records and checks (store.journal)."""
        me = self.os_login or config_mod.os_login()
        info: dict[str, Any] = {journal.OS_LOGIN: me, journal.CONFIG: str(self.config.path)}
        site = self.root / config_mod.CONFIG_NAME
        if site.is_file():
            info[journal.SITE_CONFIG] = str(site.resolve())
        if self.actor.login != me and self.config.user_of_os(me) != self.actor and not self.config.trusts(me):
            info[journal.UNPROVEN] = self.actor.login
        return info

    def inventory(self, inventory: Path | None = None) -> Path:
        """The inventory a command works on: the flag's, else the site's (resolved once, here)."""
        return (inventory or self.config.settings.inventory).resolve()

    def schedule_inventory(self, args: Mapping[str, Any]) -> Path | None:
        """The inventory a schedule's `args.inventory` names (relative to the project), or None;
        like a change request's, it stays in inventories/ or a folder of settings.paths (R11)."""
        value = args.get("inventory")
        if not value:
            return None
        settings, where = self.config.settings, f"{self.config.path}: schedules: args.inventory"
        site = (settings.inventory.resolve(),)
        return place(self.root, "inventories", str(value), where, settings.paths.inventories, site)

    def start(self, spec: runner.RunSpec, progress: ProgressFn | None = None) -> runner.RunOutcome:
        """The one door to start a run: records it under the acting user, in this site's runs folder."""
        from oaops.runs import runner

        settings = self.config.settings
        if spec.nodes is None and self.config.execution_nodes:
            spec.nodes = self.node_plan(spec.inventory, spec.limit)
        return runner.start(
            self.db,
            self.root,
            settings.runs_dir,
            self.actor.login,
            spec,
            batch_size=settings.event_batch_size,
            progress=progress,
            known_hosts=self.known_hosts,
        )

    def node_plan(self, inventory: Path, limit: str | None) -> NodePlan | None:
        """Which hosts of a job the execution nodes of their units run (None: all run here)."""
        from oaops.runs import nodes
        from oaops.runs.inventory import resolve

        hosts = resolve(self.root, inventory, limit, with_vars=False)
        return nodes.plan(self.config.execution_nodes, [(h.name, h.units()) for h in hosts])

    def start_tests(self, spec: testinfra.TestSpec, progress: ProgressFn | None = None) -> testinfra.TestOutcome:
        """The same door for pytest-testinfra files (a change's verification), recorded as a Run."""
        from oaops.runs import testinfra

        settings = self.config.settings
        return testinfra.start(
            self.db, self.root, settings.runs_dir, self.actor.login, spec, progress, known_hosts=self.known_hosts
        )

    def require(self, action: str) -> None:
        """R8: the actor's roles must allow the action."""
        if not roles.allowed(self.actor.roles, action):
            raise PermissionDenied(
                self.actor.login,
                roles.describe(action),
                f"ask for one of the roles {roles.who_may(action)} in oaops.yml",
            )

    def require_units(self, action: str, hosts: Iterable[InventoryHost], doing: str, fix: str) -> None:
        """R10: a unit-scoped role (unit_admin) acts only on hosts of its own units; `fix` may name
        {units}, the actor's unit groups (e.g. "--limit {units}")."""
        hosts = list(hosts)
        self.warn_unknown_units(hosts)
        if not roles.needs_unit_scope(self.actor.roles, action):
            return
        mine = set(self.actor.units)
        outside = sorted(h.name for h in hosts if not h.units() & mine)
        if outside:
            units = " ".join(f"unit_{u}" for u in sorted(mine))
            raise PermissionDenied(
                self.actor.login,
                f"{doing} {', '.join(outside[:5])} (outside their units, R10)",
                fix.format(units=units),
            )

    def warn_unknown_units(self, hosts: Iterable[InventoryHost]) -> None:
        """A unit_<id> group of the inventory that oaops.yml does not list is named: its hosts fall
        outside every unit admin's scope (R10) and the reports by unit (R8)."""
        unknown: dict[str, list[str]] = {}
        for h in hosts:
            for unit in sorted(h.units() - set(self.config.units)):
                unknown.setdefault(unit, []).append(h.name)
        for unit, names in sorted(unknown.items()):
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            print(
                f"oaops: warning: inventory group unit_{unit} ({shown}) is not a unit of {self.config.path}: "
                f"add `- id: {unit}` under units: (R8, R10)",
                file=sys.stderr,
            )

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def open_context(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Context:
    env = os.environ if env is None else env
    cfg = config_mod.load(flags=flags, env=env)
    me = config_mod.os_login()
    # Here rather than in config.load: the jobs a schedule may name are those services register.
    registry.validate(cfg)
    return Context(config=cfg, actor=cfg.actor(env, me), os_login=me, key=signing.key_source(None, env))
