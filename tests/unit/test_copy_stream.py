"""The COPY source that encodes on its own thread: order, errors, and no thread left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from models_core.cycle.copy_stream import EncodingCopyStream


def _read_all(stream: EncodingCopyStream) -> list[str]:
    pieces = []
    while piece := stream.read(8192):
        pieces.append(piece)
    return pieces


def test_pieces_arrive_in_order_then_the_end() -> None:
    with EncodingCopyStream(iter([f"{n}\n" for n in range(1000)])) as stream:
        assert _read_all(stream) == [f"{n}\n" for n in range(1000)]
        assert stream.read() == ""


def test_an_error_while_encoding_is_raised_by_read_after_the_good_pieces() -> None:
    def pieces() -> Iterator[str]:
        yield "a\n"
        raise ValueError("pair 7 is not JSON")

    with EncodingCopyStream(pieces()) as stream:
        assert stream.read() == "a\n"
        with pytest.raises(ValueError, match="pair 7"):
            stream.read()
        assert isinstance(stream.error, ValueError)


def test_closing_mid_stream_stops_the_producer_blocked_on_a_full_queue() -> None:
    """A COPY that fails on the server stops reading; the encoder must not wait for it forever."""
    produced = []

    def endless() -> Iterator[str]:
        while True:
            produced.append(1)
            yield "x\n"

    before = threading.active_count()
    with EncodingCopyStream(endless()) as stream:
        assert stream.read() == "x\n"
    assert threading.active_count() == before
    assert len(produced) < 20  # it stopped a few pieces ahead, not after filling memory
