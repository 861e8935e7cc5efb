"""What the bank tests share: a throwaway PostgreSQL cluster, the simulator and gateway as
processes, the issuer's key in a file key store, and helpers to read the chain."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_utils import keccak

from tests.conftest import REPO, free_port

PASSWORD = "bank-test"
SCRYPT_N = 2**12
RAIL_SECRET = "rail-test-secret"
TOKEN = "0x000000000000000000000000000000000000A002"
CARD = {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
DECLINED_CARD = {"number": "4000000000000002", "expiry": "12/30", "cvc": "123"}
MINTED_TOPIC = keccak(text="Minted(address,uint256,bytes32)")
CUSTOMER = 6  # a dev account with the customer role
ISSUER = 1


def pg_bindir() -> Path:
    """Debian's PostgreSQL binaries: `pg_config --bindir` if it has initdb, else the newest
    /usr/lib/postgresql/*/bin."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        found = Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip())
        if (found / "initdb").exists():
            return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    return Path(candidates[-1]).parent


def _version(path: str) -> int:
    return int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0


@dataclass
class PostgresCluster:
    """A cluster of its own in a temporary directory, on a free loopback port, trusting local
    connections. initdb refuses to run as root, so as root the server runs as `nobody`."""

    port: int = field(default_factory=free_port)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tally-pg-")))

    def _as_owner(self, *args: str) -> list[str]:
        return ["runuser", "-u", "nobody", "--", *args] if os.geteuid() == 0 else list(args)

    def start(self) -> PostgresCluster:
        bindir = pg_bindir()
        data = self.directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "nobody")
        subprocess.run(
            self._as_owner(
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "tally",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            cwd="/",
        )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            self._as_owner(
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(self.directory / "log"),
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
            cwd="/",
        )
        return self

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        name = "bank_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=tally dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://tally@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            self._as_owner(
                str(pg_bindir() / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "immediate",
                "stop",
            ),
            capture_output=True,
            cwd="/",
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def write_keys(directory: Path, dev_accounts: list, labels: dict[int, str]) -> Path:
    """Dev accounts' keys as the file key store reads them (`<label>.json`)."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, label in labels.items():
        keyfile = Account.encrypt(
            dev_accounts[index].key, PASSWORD, kdf="scrypt", iterations=SCRYPT_N
        )
        (directory / f"{label}.json").write_text(json.dumps(keyfile))
    return directory


@dataclass
class Service:
    """A `tally bank ...` process (gateway or simulator) on a loopback port."""

    args: list[str]
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self, extra_env: dict[str, str] | None = None, timeout: float = 60.0, may_exit: bool = False
    ) -> Service:
        """Start and wait until it answers (or, with `may_exit`, until it exits: a crash
        point can be reached before the listener is up)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tally_cli", "bank", *self.args, "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **self.env, **(extra_env or {})},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if may_exit:
                    return self
                raise RuntimeError(f"{self.args[0]} exited early:\n{self.log_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"{self.args[0]} did not answer:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def simulator(tmp: Path, gateway_port: int) -> Service:
    return Service(
        ["card-simulator", "--callback-url", f"http://127.0.0.1:{gateway_port}/rail/callbacks"],
        free_port(),
        {"TALLY_BANK_RAIL_SECRET": RAIL_SECRET},
        tmp / "simulator.log",
    )


def node_api_key(
    node_url: str, datadir: Path, role: str = "auditor", addresses: tuple[str, ...] = ()
) -> str:
    """A new node API key (the gateway's withdrawal stream needs one that subscribes
    chain-wide: auditor), made with the node's bootstrap admin key."""
    admin = (datadir / "api-admin.key").read_text().strip()
    response = httpx.post(
        node_url + "/api/v1/admin/api-keys",
        json={
            "role": role,
            "label": f"bank gateway {uuid.uuid4().hex[:8]}",
            "addresses": list(addresses),
        },
        headers={"authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def gateway(
    tmp: Path,
    port: int,
    node_url: str,
    rail_url: str,
    keys: Path,
    db: str | None,
    node_key: str,
    data_dir: Path | None = None,
) -> Service:
    env = {
        "TALLY_BANK_RAIL_SECRET": RAIL_SECRET,
        "TALLY_RPC_URL": node_url,
        "TALLY_BANK_NODE_API_KEY": node_key,
        "TALLY_BANK_RAIL_URL": rail_url,
        "TALLY_KEYSTORE_DIR": str(keys),
        "TALLY_KEYSTORE_PASSWORD": PASSWORD,
        "TALLY_BANK_DATA_DIR": str(data_dir or tmp / "bank-data"),
    }
    if db is not None:
        env["TALLY_BANK_DB"] = db
    return Service(
        ["gateway", "--poll", "0.2", "--rail-timeout", "2"], port, env, tmp / f"gateway-{port}.log"
    )


def api_key(service: Service, role: str, account: str | None = None) -> str:
    """`tally bank api-key`, against the gateway's database."""
    args = ["--role", role, "--name", f"test-{role}"]
    if account:
        args += ["--account", account]
    result = subprocess.run(
        [sys.executable, "-m", "tally_cli", "bank", "api-key", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **service.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached in {timeout}s")


@dataclass
class Stack:
    """A node, the card simulator and a gateway on PostgreSQL, with keys to call them."""

    node_url: str
    simulator: Service
    gateway: Service
    keys: Path
    db: str
    customer: str  # the customer's address
    customer_key: str
    operations_key: str

    def faults(self, **faults: Any) -> None:
        """Replace the simulator's faults (none given: no faults)."""
        response = httpx.put(
            self.simulator.url + "/v1/faults",
            json=faults,
            headers={"authorization": f"Bearer {RAIL_SECRET}"},
        )
        assert response.status_code == 200, response.text

    def ledger(self) -> dict[str, dict[str, Any]]:
        """The simulator's records by reference."""
        response = httpx.get(
            self.simulator.url + "/v1/ledger", headers={"authorization": f"Bearer {RAIL_SECRET}"}
        )
        return {record["reference"]: record for record in response.json()}

    def topup(
        self,
        key: str,
        amount: int,
        card: dict[str, str] | None = None,
        account: str | None = None,
        api_key: str | None = None,
        timeout: float = 30,
    ) -> httpx.Response:
        body = {"account": account or self.customer, "amount": amount, "card": card or CARD}
        return httpx.post(
            self.gateway.url + "/topups",
            json=body,
            timeout=timeout,
            headers={
                "authorization": f"Bearer {api_key or self.customer_key}",
                "idempotency-key": key,
            },
        )

    def get(self, path: str, api_key: str | None = None) -> httpx.Response:
        return httpx.get(
            self.gateway.url + path,
            timeout=30,
            headers={"authorization": f"Bearer {api_key or self.operations_key}"},
        )

    def wait_topup(self, topup_id: int, status: str = "minted", timeout: float = 40) -> dict:
        def reached() -> dict | None:
            view = self.get(f"/topups/{topup_id}").json()
            return view if view["status"] == status else None

        return wait_for(reached, timeout, f"top-up {topup_id} {status}")

    def wait_withdrawal(self, withdrawal_id: int, status: str, timeout: float = 40) -> dict:
        def reached() -> dict | None:
            response = self.get(f"/withdrawals/{withdrawal_id}")
            if response.status_code != 200:
                return None
            view = response.json()
            return view if view["status"] == status else None

        return wait_for(reached, timeout, f"withdrawal {withdrawal_id} {status}")


def make_key(db: str, role: str, account: str | None = None) -> str:
    """An API key written straight into the gateway's database through `bank.auth` (the CLI
    does the same; `test_bank_sqlite` drives the CLI itself)."""
    from bank.auth import GatewayRole, create_key
    from bank.db import make_engine, sessions

    engine = make_engine(db)
    try:
        with sessions(engine)() as session:
            return create_key(session, GatewayRole(role), f"test-{role}", account)
    finally:
        engine.dispose()


def minted_events(w3: Any, reference: str) -> list[dict]:
    """WalletToken's `Minted` logs for a top-up reference (0x-hex)."""
    from contracts import load_artifact

    token = w3.eth.contract(address=TOKEN, abi=load_artifact("WalletToken")["abi"])
    topic = "0x" + reference.removeprefix("0x")
    logs = w3.eth.get_logs(
        {"address": TOKEN, "fromBlock": 0, "toBlock": "latest", "topics": [None, None, topic]}
    )
    minted = token.events.Minted()
    return [
        dict(minted.process_log(log)["args"]) for log in logs if log["topics"][0] == MINTED_TOPIC
    ]
