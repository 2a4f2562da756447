"""Dovecot, Debian's IMAP server (`dovecot-imapd`, installed by scripts/ensure-system-packages.sh),
run by the project as a foreground process of its own: a configuration file written into a folder
of its own, the accounts in a passwd-file there, the mail as maildir under it, listening on
127.0.0.1 only. Nothing of the machine's own Dovecot (/etc/dovecot, a system service) is used or
changed; several can run side by side (each its own folder, port and instance name).

Started as root (CI, the sessions), Dovecot's own processes run as its package's users (`dovecot`,
`dovenull`) and the mail belongs to `dovecot`; started by another user, every process and the mail
are that user's (Dovecot runs unprivileged when its users are the one starting it).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

# where Debian's package puts it; PATH first for other systems
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

_CONFIG = """\
# written by invoice_pipelines_devtools/standins/dovecot.py: a loopback IMAP server for tests,
# the demo and `bench mailbox`; plain-text logins are fine on 127.0.0.1 only
instance_name = {instance}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# a refused login is answered at once (Dovecot waits 2 s by default, against guessing): the tests
# give a wrong password and a silent server a one-second timeout in the same tick
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
# the folders as directories, "/" between levels (as most servers show them)
mail_location = maildir:{root}/mail/%u:LAYOUT=fs
# a test's or a benchmark's mail: no fsync after each message
mail_fsync = never
# only Dovecot changes the mail (APPEND, MOVE): it may trust its own indexes instead of looking
# at every folder's directories again on each command (a LIST over 10,000 folders)
maildir_very_dirty_syncs = yes
mailbox_list_index_very_dirty_syncs = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={root}/mail/%u
}}
# the benchmark's tick logs in thousands of times a second: login and imap processes are kept
# and reused instead of one new process per connection
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
}}
service imap {{
  service_count = 1000
  process_min_avail = 4
  process_limit = 1024
}}
service auth {{
  client_limit = 2048
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def available() -> bool:
    return os.access(DOVECOT, os.X_OK)


def _users() -> dict[str, str]:
    """Who Dovecot's processes and the mail run as (module docstring)."""
    if os.geteuid() == 0:
        internal, login = pwd.getpwnam("dovecot"), pwd.getpwnam("dovenull")
        return {
            "internal_user": internal.pw_name,
            "internal_group": grp.getgrgid(internal.pw_gid).gr_name,
            "login_user": login.pw_name,
            "mail_user": str(internal.pw_uid),
            "mail_group": str(internal.pw_gid),
        }
    me = pwd.getpwuid(os.getuid())
    return {
        "internal_user": me.pw_name,
        "internal_group": grp.getgrgid(me.pw_gid).gr_name,
        "login_user": me.pw_name,
        "mail_user": str(me.pw_uid),
        "mail_group": str(me.pw_gid),
    }


def prepare(root: Path | None, port: int, accounts: dict[str, str]) -> Path:
    """The server's folder (a new temporary one without `root`) with its configuration and
    accounts (user -> password); the path of the configuration file."""
    if not available():
        raise RuntimeError(
            f"Dovecot is not installed ({DOVECOT} is missing): run "
            "scripts/ensure-system-packages.sh (apt-get install dovecot-imapd)"
        )
    # a temporary one in memory where the machine has /dev/shm: a maildir is a few files per
    # message and per folder, and a busy disk made a tick wait on them
    memory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    root = Path(root) if root else Path(tempfile.mkdtemp(prefix="ip-dovecot-", dir=memory))
    users = _users()
    for sub in ("mail", "run", "state"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # Dovecot's own users reach the mail and the accounts below it
    if os.geteuid() == 0:
        for path in [root / "mail", *(root / "mail").rglob("*")]:
            os.chown(path, int(users["mail_user"]), int(users["mail_group"]))
    (root / "users").write_text(
        "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in accounts.items())
    )
    config = root / "dovecot.conf"
    config.write_text(_CONFIG.format(root=root, port=port, instance=f"ip-{port}", **users))
    return config


def start(config: Path) -> subprocess.Popen:
    """Dovecot in the foreground on `config`; stopped by terminating the process, and ended with
    the thread that started it however that ends (`_dies_with_parent`)."""
    return subprocess.Popen(
        [*_dies_with_parent(), DOVECOT, "-F", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _dies_with_parent() -> list[str]:
    """util-linux's `setpriv --pdeathsig TERM` before Dovecot (it sets the parent-death signal,
    then becomes Dovecot: the same process), where the machine has it: the kernel sends Dovecot's
    master SIGTERM when the thread that started it ends, and the master stops its own processes.
    Without it a test or a benchmark killed with SIGKILL left the master and its processes
    running: the suite's sweep (invoice_pipelines_tests/processes.py) finds a process by the
    environment it was started with, and Dovecot's master writes its process titles over that
    memory, so the sweep never saw it (four orphaned masters after one stress round). Whoever
    starts one does so in a thread that lives as long as the server: a test's fixture, the
    benchmark, the demo's stand-in all start it in their main thread."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def last_log_lines(config: Path, lines: int = 5) -> str:
    log = config.parent / "dovecot.log"
    if not log.exists():
        return ""
    return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
