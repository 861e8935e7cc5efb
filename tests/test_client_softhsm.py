"""PKCS#11 key store against real SoftHSM2 tokens made for this test run.

Also home of `softhsm_tokens()`, which the other client test modules use: SoftHSM2 reads its
configuration when the module is first loaded into the process, so every token the run needs is
created once, up front, in a private `SOFTHSM2_CONF` with its own token directory.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

import pkcs11
import pytest
from eth_account import Account
from pkcs11 import Attribute, KeyType, ObjectClass

from client.errors import PinLockedOut
from client.policy import PinGuard
from client.signing import sign_transaction
from tally_common.keystore import SOFTHSM2_MODULE, Pkcs11KeyStore
from tally_common.keystore.errors import KeyExists, KeyNotFound, KeyStoreUnavailable, WrongPin
from tally_common.keystore.softhsm import token_directory

SO_PIN = "87654321"
USER_PIN = "1234"
#: main: shared by the client tests; extract: logged out before the raw read-out attempt;
#: pins: wrong-PIN and lockout tests (never logged in with a right PIN before they run);
#: cli: the CLI tests; bank-a..d: the four institutions of the genesis ceremony; bank-issuer:
#: the gateway's issuer (test_bank_hsm_issuer); race-1..4: processes logging in together.
RACING_TOKENS = tuple(f"race-{n}" for n in range(1, 5))
TOKENS = (
    *("sdk-main", "sdk-extract", "sdk-pins", "sdk-cli"),
    *("bank-a", "bank-b", "bank-c", "bank-d", "bank-issuer"),
    *RACING_TOKENS,
)


@cache
def softhsm_tokens() -> Path:
    """Create this run's tokens; return the SoftHSM2 config path (also put in the env)."""
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM2_MODULE).exists():
        pytest.fail(
            "SoftHSM2 is not installed (softhsm2-util / libsofthsm2.so missing): "
            "run scripts/install.sh, which installs Debian's softhsm2",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="tally-softhsm-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # the tokens live as long as the run
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in TOKENS:
        subprocess.run(
            [
                *("softhsm2-util", "--init-token", "--free", "--label", label),
                *("--so-pin", SO_PIN, "--pin", USER_PIN),
            ],
            check=True,
            capture_output=True,
            env=os.environ | {"SOFTHSM2_CONF": str(conf)},
        )
    return conf


@pytest.fixture(scope="module")
def hsm() -> Pkcs11KeyStore:
    softhsm_tokens()
    return Pkcs11KeyStore("sdk-main", USER_PIN)


def test_key_is_generated_in_the_token_and_cannot_be_read_out() -> None:
    softhsm_tokens()
    store = Pkcs11KeyStore("sdk-extract", USER_PIN)
    info = store.create("vault")
    assert store.key_flags("vault") == {
        "sensitive": True,
        "extractable": False,
        "always_sensitive": True,
        "never_extractable": True,
    }
    store.close()  # logs the process out, so a raw session of our own can log in

    token = pkcs11.lib(SOFTHSM2_MODULE).get_token(token_label="sdk-extract")
    with token.open(user_pin=USER_PIN) as session:
        private = session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label="vault"
        )
        with pytest.raises(pkcs11.AttributeSensitive):
            private[Attribute.VALUE]
        with pytest.raises(pkcs11.PKCS11Error):
            private[Attribute.EXTRACTABLE] = True  # cannot be made extractable afterwards
    reopened = Pkcs11KeyStore("sdk-extract", USER_PIN)
    assert reopened.address("vault") == info.address  # found again by label
    reopened.close()


def test_keys_by_label_and_signatures_recover_to_the_key(hsm: Pkcs11KeyStore) -> None:
    alice = hsm.create("alice")
    bob = hsm.create("bob")
    assert alice.address != bob.address
    listed = {key.label: key.address for key in hsm.list()}
    assert listed["alice"] == alice.address and listed["bob"] == bob.address
    assert hsm.address("alice") == alice.address
    with pytest.raises(KeyExists):
        hsm.create("alice")
    with pytest.raises(KeyNotFound, match="no key labelled 'carol'"):
        hsm.address("carol")
    for nonce in range(8):  # several signatures: both recovery ids and high s get exercised
        tx = {"chainId": 1337, "nonce": nonce, "to": bob.address, "value": nonce, "gas": 21000}
        signed = sign_transaction(hsm, "alice", tx | {"gasPrice": 0})
        assert Account.recover_transaction(signed.raw) == alice.address
        assert signed.sender == alice.address


def test_wrong_pin_is_refused_and_retries_lock_out_before_the_token_is_asked() -> None:
    softhsm_tokens()
    with pytest.raises(WrongPin, match="refused the PIN"):
        Pkcs11KeyStore("sdk-pins", "0000").list()
    guard = PinGuard(max_attempts=2, lockout_seconds=60)
    for _ in range(2):
        with pytest.raises(WrongPin):
            Pkcs11KeyStore("sdk-pins", "9999", guard=guard).list()
    # Locked out: even the right PIN does not reach the token now.
    with pytest.raises(PinLockedOut, match="PIN retry lockout"):
        Pkcs11KeyStore("sdk-pins", USER_PIN, guard=guard).list()
    # Without the lockout, the right PIN works and resets nothing it should not.
    store = Pkcs11KeyStore("sdk-pins", USER_PIN, guard=PinGuard(max_attempts=2))
    assert store.list() == []
    # A second store on an already logged-in token must present the same PIN.
    with pytest.raises(WrongPin):
        Pkcs11KeyStore("sdk-pins", "1111").list()
    store.close()


def test_missing_token_and_module_say_what_is_missing() -> None:
    softhsm_tokens()
    with pytest.raises(KeyStoreUnavailable, match=r"no token labelled 'nope'.*sdk-main"):
        Pkcs11KeyStore("nope", USER_PIN).list()
    with pytest.raises(KeyStoreUnavailable, match=r"scripts/install\.sh"):
        Pkcs11KeyStore("sdk-main", USER_PIN, module="/nonexistent/libpkcs11.so").list()


#: Each process logs in to its own token and out again, many times, from the same instant.
LOG_IN_AND_OUT = """
import sys, time
from tally_common.keystore import Pkcs11KeyStore
label, pin, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
for _ in range(40):
    Pkcs11KeyStore(label, pin).open().close()
"""


def test_processes_logging_in_to_their_own_tokens_together_all_get_in() -> None:
    """Validators of one host start together, each logging in to its own token.

    SoftHSM2 rewrites a token's file at each login and a lookup by label reads every token, so
    without retrying its general errors a third of these lookups failed and a node exited; and
    a process whose module initialised while another rewrote a token aborted inside SoftHSM2
    (2 runs of 12 on a loaded machine) until loading, logging in and out took turns.
    """
    softhsm_tokens()
    start = time.time() + 2.0
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", LOG_IN_AND_OUT, label, USER_PIN, str(start)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for label in RACING_TOKENS
    ]
    errors = [racer.communicate(timeout=120)[1] for racer in racers]
    failed = [error for racer, error in zip(racers, errors, strict=True) if racer.returncode]
    assert failed == []


def test_only_softhsm2_takes_turns_at_the_token_directory_its_conf_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "softhsm2.conf"
    conf.write_text("# tokens\ndirectories.tokendir = /srv/tokens \nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    assert token_directory(SOFTHSM2_MODULE) == Path("/srv/tokens")
    assert token_directory("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so") is None
    monkeypatch.setenv("SOFTHSM2_CONF", str(tmp_path / "missing.conf"))
    assert token_directory(SOFTHSM2_MODULE) is None
