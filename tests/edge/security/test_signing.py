"""Ed25519 signing: raw, detached (bytes and files), key ids, config keys, the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge.cli.agent import main
from edge.config import parse_config
from edge.errors import ConfigError, SignatureError
from edge.security import signing


@pytest.fixture(scope="module")
def issuer() -> signing.Ed25519PrivateKey:
    return signing.generate_private_key()


def test_raw_sign_verify_returns_key_id(issuer: signing.Ed25519PrivateKey) -> None:
    other = signing.generate_private_key()
    keys = signing.trusted_keys([signing.public_key_text(other),
                                 signing.public_key_text(issuer)])
    sig = signing.sign_ed25519(b"payload", issuer)
    assert signing.verify_ed25519(b"payload", sig, keys) == signing.key_id(issuer)
    assert signing.verify_ed25519(b"payload", sig, keys,
                                  key_id=signing.key_id(issuer)) == signing.key_id(issuer)
    with pytest.raises(SignatureError, match="bad signature"):
        signing.verify_ed25519(b"payloaD", sig, keys)
    with pytest.raises(SignatureError, match="bad signature for key"):
        signing.verify_ed25519(b"payload", sig, keys, key_id=signing.key_id(other))
    with pytest.raises(SignatureError, match="unknown key id"):
        signing.verify_ed25519(b"payload", sig, keys, key_id="0" * 16)
    with pytest.raises(SignatureError, match="64"):
        signing.verify_ed25519(b"payload", sig[:-1], keys)
    with pytest.raises(SignatureError, match="no issuer keys"):
        signing.verify_ed25519(b"payload", sig, {})


def test_key_id_is_derived_from_the_public_key(issuer: signing.Ed25519PrivateKey) -> None:
    kid = signing.key_id(issuer)
    assert len(kid) == 16 and all(c in "0123456789abcdef" for c in kid)
    pub = signing.parse_public_key(signing.public_key_text(issuer))
    assert signing.key_id(pub) == kid
    assert signing.key_id(signing.generate_private_key()) != kid


@pytest.mark.parametrize("text, why", [
    ("ed25519:???", "base64"), ("ed25519:" + "QUJD", "3 bytes"), ("", "0 bytes")])
def test_bad_public_keys_say_why(text: str, why: str) -> None:
    with pytest.raises(SignatureError, match=why):
        signing.trusted_keys([text])


def test_detached_bytes_and_file_agree_and_bind_context(
        issuer: signing.Ed25519PrivateKey, tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)      # > one read chunk
    f = tmp_path / "image.bin"
    f.write_bytes(data)
    keys = signing.trusted_keys([signing.public_key_text(issuer)])
    line = signing.sign_detached(f, issuer, "firmware")
    assert line == signing.sign_detached(data, issuer, "firmware")   # Ed25519 is deterministic
    assert signing.verify_detached(data, line, keys, "firmware") == signing.key_id(issuer)
    assert signing.verify_detached(f, line.encode() + b"\n", keys, "firmware")
    with pytest.raises(SignatureError, match="bad signature"):
        signing.verify_detached(f, line, keys, "model")           # other purpose
    with pytest.raises(SignatureError, match="bad signature"):
        signing.verify_detached(data + b"x", line, keys, "firmware")


@pytest.mark.parametrize("line, why", [
    (b"", "not a signature line"), (b"afe-sig-v1 abc", "not a signature line"),
    (b"afe-sig-v1 ABCDEF0123456789 AAAA", "16 lowercase hex"),
    (b"afe-sig-v1 0123456789abcdef !!!", "base64"),
    (b"afe-sig-v1 0123456789abcdef QUJD", "3 bytes"),
    (b"x" * 500, "longer than"),
])
def test_malformed_signature_lines(line: bytes, why: str,
                                   issuer: signing.Ed25519PrivateKey) -> None:
    keys = signing.trusted_keys([signing.public_key_text(issuer)])
    with pytest.raises(SignatureError, match=why):
        signing.verify_detached(b"data", line, keys, "watchlist")


def test_unknown_key_is_refused_before_hashing(issuer: signing.Ed25519PrivateKey,
                                               tmp_path: Path) -> None:
    line = signing.sign_detached(b"x", signing.generate_private_key(), "watchlist")
    keys = signing.trusted_keys([signing.public_key_text(issuer)])
    # the content is a path that does not exist: had it been hashed, OSError
    with pytest.raises(SignatureError, match="unknown key id"):
        signing.verify_detached(tmp_path / "absent", line, keys, "watchlist")


def test_config_issuer_keys(issuer: signing.Ed25519PrivateKey) -> None:
    cfg = parse_config(f'[security]\nissuer_keys = ["{signing.public_key_text(issuer)}"]\n')
    assert list(signing.trusted_keys(cfg.security.issuer_keys)) == [signing.key_id(issuer)]
    with pytest.raises(ConfigError, match=r"security.issuer_keys.*entry 0"):
        parse_config('[security]\nissuer_keys = ["ed25519:QUJD"]\n')


def test_cli_gen_sign_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "gen", "--out", str(tmp_path / "ops")]) == 0
    assert (tmp_path / "ops.key").stat().st_mode & 0o777 == 0o600
    pub = (tmp_path / "ops.pub").read_text().strip()
    assert pub in capsys.readouterr().out
    doc = tmp_path / "list.json"
    doc.write_text('{"entries": []}')
    assert main(["keys", "sign", "--key", str(tmp_path / "ops.key"), "--context", "watchlist",
                 str(doc)]) == 0
    assert main(["keys", "verify", "--pub", str(tmp_path / "ops.pub"), "--context",
                 "watchlist", str(doc)]) == 0
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[security]\nissuer_keys = ["{pub}"]\n')
    assert main(["keys", "verify", "--config", str(cfg), "--context", "watchlist",
                 str(doc)]) == 0
    doc.write_text('{"entries": ["h1:x"]}')
    capsys.readouterr()
    assert main(["keys", "verify", "--config", str(cfg), "--context", "watchlist",
                 str(doc)]) == 1
    assert "bad signature" in capsys.readouterr().err
    # never overwrite a private key
    assert main(["keys", "gen", "--out", str(tmp_path / "ops")]) == 2
