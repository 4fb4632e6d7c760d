"""Security primitives shared by the SDK: Ed25519 signatures (:mod:`.signing`)."""
