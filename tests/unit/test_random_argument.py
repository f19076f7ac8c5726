"""EAB kids and HMAC keys never begin with "-", so certbot and lego read them as values, not options."""

from gatewaycerts.pki.jws import b64d, b64e, random_argument


def test_a_draw_that_encodes_to_a_leading_dash_is_drawn_again():
    draws = iter([b"\xf8" + bytes(31), b"\x01" * 32])  # 0xF8 -> "-" as the first base64url letter
    assert b64e(b"\xf8" + bytes(31)).startswith("-")
    text = random_argument(32, draw=lambda n: next(draws))
    assert text == b64e(b"\x01" * 32)
    assert b64d(text, "key") == b"\x01" * 32


def test_the_argument_carries_the_bytes_asked_for():
    assert len(b64d(random_argument(16), "kid")) == 16
    assert len(b64d(random_argument(32), "hmac")) == 32
