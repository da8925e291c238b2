#!/usr/bin/python
# Copyright (c) oaops contributors
# Apache License 2.0 (see pyproject.toml)
"""Save the files a change will write, and put them back byte for byte (R18 rollback)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oaops_snapshot
short_description: Snapshot the files a change writes, or restore them byte for byte, in one call
version_added: "0.1.0"
description:
  - "O(action=save): copies every file of O(files) into C(<store>/<id>/files/) with its sha256, size,
    mode, owner and group in C(<store>/<id>/manifest.json); a path that does not exist is recorded as
    absent, so a restore removes what the change created. Saving into an existing snapshot only adds
    paths it does not hold yet: the first copy of a file is the one a rollback needs."
  - "O(action=restore): puts every file of the snapshot back (content, mode, owner, group) through a
    temporary file and an atomic rename, and removes files that were absent; files already equal are
    left alone. Every restored file is checked against the recorded sha256 afterwards."
  - Both report C(changed) honestly and support check mode (nothing is written) and diff mode.
options:
  action:
    description: Save or restore.
    type: str
    choices: [save, restore]
    default: save
  id:
    description: Snapshot name, e.g. the change id and attempt; letters, digits, C(_), C(.), C(-).
    type: str
    required: true
  store:
    description: Folder holding the snapshots of this host (created mode 0700).
    type: path
    default: /var/lib/oaops/snapshots
  files:
    description: Absolute paths to save (O(action=save)). Ignored by restore, which uses the manifest.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author: oaops contributors
"""

EXAMPLES = r"""
- name: Save the nginx headers file before the change
  oaops_snapshot:
    action: save
    id: CHG-2026-0001-1
    files: [/etc/nginx/conf.d/headers.conf]

- name: Put it back
  oaops_snapshot:
    action: restore
    id: CHG-2026-0001-1
"""

RETURN = r"""
oaops:
  description: What was saved or restored.
  returned: always
  type: dict
  contains:
    kind:
      description: C(snapshot).
      type: str
    id:
      description: The snapshot name.
      type: str
    dir:
      description: The snapshot folder.
      type: str
    files:
      description: "Per path: exists, sha256, size, mode, and for restore the action taken
        (restored, removed, unchanged) and whether the result matches the recorded sha256."
      type: list
      elements: dict
"""

import hashlib
import json
import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

ARGUMENT_SPEC = {
    "action": {"type": "str", "choices": ["save", "restore"], "default": "save"},
    "id": {"type": "str", "required": True},
    "store": {"type": "path", "default": "/var/lib/oaops/snapshots"},
    "files": {"type": "list", "elements": "path", "default": []},
}
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_DIFF = 256 * 1024  # larger or binary files are named in the diff, not shown


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(path):
    """What a path is now: exists, sha256, size, mode, uid, gid."""
    if not os.path.lexists(path):
        return {"path": path, "exists": False}
    if not os.path.isfile(path) or os.path.islink(path):
        return {"path": path, "exists": True, "error": "not a regular file (only regular files are snapshotted)"}
    st = os.stat(path)
    return {
        "path": path,
        "exists": True,
        "sha256": sha256(path),
        "size": st.st_size,
        "mode": "%04o" % (st.st_mode & 0o7777),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


def text_of(path, limit=MAX_DIFF):
    try:
        if os.path.getsize(path) > limit:
            return None
        with open(path, "rb") as fh:
            data = fh.read()
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def stored_name(path):
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:32]


def read_manifest(folder):
    try:
        with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def write_manifest(folder, manifest):
    tmp = os.path.join(folder, "manifest.json.partial")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(tmp, os.path.join(folder, "manifest.json"))


def save(module, folder):
    manifest = read_manifest(folder) or {"id": module.params["id"], "files": []}
    held = {f["path"] for f in manifest["files"]}
    new = []
    for path in module.params["files"]:
        if not os.path.isabs(path):
            module.fail_json(msg=f"files: {path} is not an absolute path")
        if path in held:
            continue
        entry = describe(path)
        if entry.get("error"):
            module.fail_json(msg="{}: {}".format(path, entry["error"]))
        new.append(entry)
        held.add(path)
    if not new or module.check_mode:
        return bool(new), manifest["files"] + new
    os.makedirs(os.path.join(folder, "files"), mode=0o700, exist_ok=True)
    for entry in new:
        if entry["exists"]:
            target = os.path.join(folder, "files", stored_name(entry["path"]))
            tmp = target + ".partial"
            # 0600 from the start: a snapshot may hold a secret (a config with a password, R11)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            os.chmod(tmp, 0o600)
            shutil.copyfile(entry["path"], tmp)
            if sha256(tmp) != entry["sha256"]:
                os.unlink(tmp)
                module.fail_json(msg="{} changed while it was being saved; run again".format(entry["path"]))
            os.rename(tmp, target)
    manifest["files"].extend(new)
    write_manifest(folder, manifest)
    return True, manifest["files"]


def restore(module, folder):
    manifest = read_manifest(folder)
    if manifest is None:
        module.fail_json(msg="snapshot {} not found in {}".format(module.params["id"], module.params["store"]))
    changed, out, diffs, failures = False, [], [], []
    for entry in manifest["files"]:
        path, now = entry["path"], describe(entry["path"])
        result = dict(entry)
        if not entry["exists"]:
            result["action"] = "removed" if now["exists"] else "unchanged"
            if now["exists"]:
                diffs.append({"before_header": path, "before": text_of(path) or "", "after_header": path, "after": ""})
                if not module.check_mode:
                    os.unlink(path)
            result["matches"] = module.check_mode or not os.path.lexists(path)
        else:
            same = now.get("sha256") == entry["sha256"]
            meta_same = same and now.get("mode") == entry["mode"] and now.get("uid") == entry["uid"]
            meta_same = meta_same and now.get("gid") == entry["gid"]
            result["action"] = "unchanged" if meta_same else "restored"
            saved = os.path.join(folder, "files", stored_name(path))
            if not same:
                diffs.append({
                    "before_header": path, "before": (text_of(path) if now["exists"] else "") or "",
                    "after_header": path + " (snapshot)", "after": text_of(saved) or "",
                })  # fmt: skip
            if not meta_same and not module.check_mode:
                put_back(saved, entry)
            result["matches"] = module.check_mode or describe(path).get("sha256") == entry["sha256"]
        if not result["matches"]:
            failures.append(f"{path} does not match its snapshot after the restore")
        changed = changed or result["action"] != "unchanged"
        out.append(result)
    return changed, out, diffs, failures


def put_back(saved, entry):
    """Content, mode, owner through a temp file in the same folder and an atomic rename."""
    path = entry["path"]
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".oaops-restore-", dir=folder)
    os.close(fd)
    try:
        shutil.copyfile(saved, tmp)
        os.chmod(tmp, int(entry["mode"], 8))
        if os.geteuid() == 0:
            os.chown(tmp, entry["uid"], entry["gid"])
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not NAME.match(module.params["id"]):
        module.fail_json(msg="id: {!r} may hold only letters, digits, _, . and -".format(module.params["id"]))
    folder = os.path.join(module.params["store"], module.params["id"])
    payload = {"kind": "snapshot", "id": module.params["id"], "dir": folder, "check_mode": module.check_mode}
    if module.params["action"] == "save":
        if not module.check_mode:
            os.makedirs(folder, mode=0o700, exist_ok=True)
        changed, files = save(module, folder)
        payload["files"] = files
        module.exit_json(changed=changed, oaops=payload)
    changed, files, diffs, failures = restore(module, folder)
    payload["files"] = files
    if failures:
        module.fail_json(msg="; ".join(failures), changed=changed, oaops=payload)
    module.exit_json(changed=changed, oaops=payload, diff=diffs)


if __name__ == "__main__":
    main()
