"""Image transfer state machines, sans-IO: corrupt chunks, loss, resume, bad hash."""

from __future__ import annotations

import dataclasses
import random

from edge.security.signing import generate_private_key, key_id, sign_detached
from firmware_bridge import messages as M
from firmware_bridge.image import Flash, ImageReceiver, ImageUpload, offer_for


def _setup(size: int = 5000) -> tuple[bytes, ImageUpload, ImageReceiver]:
    key = generate_private_key()
    image = random.Random(size).randbytes(size)
    up = ImageUpload(offer_for(1, image, sign_detached(image, key, "firmware")), image)
    return image, up, ImageReceiver({key_id(key): key.public_key()})


def _run(up: ImageUpload, rx: ImageReceiver, rng: random.Random, loss: float = 0.0,
         corrupt: float = 0.0, steps: int = 2000) -> None:
    now = 0.0
    to_dev = up.start(now)
    for _ in range(steps):
        now += 0.01
        to_agent = []
        for m in to_dev:
            if rng.random() < loss:
                continue
            if isinstance(m, M.ImageChunk) and rng.random() < corrupt:
                m = dataclasses.replace(m, data=bytes([m.data[0] ^ 1]) + m.data[1:])
            st = rx.handle(m)
            if st is not None and rng.random() >= loss:
                to_agent.append(st)
        to_dev = []
        for st in to_agent:
            to_dev += up.on_status(st, now)
        to_dev += up.poll(now)
        if up.result is not None:
            return


def test_transfer_through_loss_and_corrupt_chunks() -> None:
    image, up, rx = _setup()
    _run(up, rx, random.Random(3), loss=0.1, corrupt=0.1)
    assert up.result == "done" and bytes(rx.flash.data) == image
    assert rx.bad_chunks > 0 and up.resumes > 0


def test_a_second_offer_of_the_same_image_resumes_from_flash() -> None:
    image, up, rx = _setup()
    rx.handle(up.offer)
    for off in range(0, 2048, 256):
        rx.handle(_chunk(image, off))
    rx2 = ImageReceiver(rx.keys, rx.flash)  # rebooted
    st = rx2.handle(up.offer)
    assert st is not None and st.next_offset == 2048 and st.state == M.IMG_RECEIVING


def _chunk(image: bytes, off: int) -> M.ImageChunk:
    from firmware_bridge.schema import crc32c

    data = image[off:off + 256]
    return M.ImageChunk(1, off, crc32c(data), data)


def test_an_image_whose_hash_differs_is_discarded() -> None:
    image, up, rx = _setup(600)
    bad = dataclasses.replace(up.offer, sha256=bytes(32))
    rx.handle(bad)
    st = None
    for off in range(0, 600, 256):
        st = rx.handle(_chunk(image, off))
    assert st is not None and st.state == M.IMG_BAD_HASH and not rx.flash.done
    assert isinstance(rx.flash, Flash) and len(rx.flash.data) == 0
