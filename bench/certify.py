"""Certification throughput, in one process (not a test: ``.venv/bin/python bench/certify.py``).

Prints raw RSA-2048 signatures per second, then certified messages per second at 4 KiB and
1 MiB — one certified message = acceptance receipt + transport envelope + one delivery
receipt (completa, so the original travels twice), each built and signed, plus the
verification (``classify`` with a trust store) of the envelope — and the ratio
messages/s × 3 ÷ signatures/s. Targets (issue 3): ratio ≥ 0.5 at 4 KiB; ≥ 80 messages/s
per core at 1 MiB. Keys are generated in memory: nothing is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pecmail.settings")

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from pecmail.certification import classify, envelopes, testing  # noqa: E402
from pecmail.certification.envelopes import Transaction  # noqa: E402

DURATION = float(os.environ.get("BENCH_SECONDS", "3"))


def interleaved(first, second, seconds: float = DURATION, slice_seconds: float = 0.2):
    """Return ((wall rate, CPU rate) of ``first``, (wall rate, CPU rate) of ``second``).

    The two workloads run in alternating short slices so that both figures see the same
    machine load (this host is shared), which keeps their ratio meaningful; the CPU-time
    rates (``time.process_time``) are the per-core figures, independent of other processes.
    """
    first()
    second()
    counts, wall, cpu = [0, 0], [0.0, 0.0], [0.0, 0.0]
    deadline = time.perf_counter() + 2 * seconds
    while time.perf_counter() < deadline:
        for index, func in enumerate((first, second)):
            start, start_cpu = time.perf_counter(), time.process_time()
            while True:
                func()
                counts[index] += 1
                elapsed = time.perf_counter() - start
                if elapsed >= slice_seconds:
                    wall[index] += elapsed
                    cpu[index] += time.process_time() - start_cpu
                    break
    return tuple((counts[i] / wall[i], counts[i] / max(cpu[i], 1e-9)) for i in (0, 1))


def original_of(size: int) -> bytes:
    head = (
        b"From: mario.rossi@pec.example.test\r\nTo: anna.bianchi@pec.altro.test\r\n"
        b"Subject: Benchmark\r\nMessage-ID: <bench@client.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nciao\r\n'
        b'--b\r\nContent-Type: application/octet-stream; name="dati.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    )
    tail = b"\r\n--b--\r\n"
    payload_len = max(0, size - len(head) - len(tail))
    raw = base64.b64encode(os.urandom(payload_len * 3 // 4 + 3))[:payload_len]
    lines = b"\r\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))
    return (head + lines + tail)[:size] if len(head + lines + tail) > size else head + lines + tail


def main() -> None:
    import django

    django.setup()
    sender = testing.make_identity("pec.example.test", "Example PEC S.p.A.")
    receiver = testing.make_identity("pec.altro.test", "Altro PEC S.r.l.")
    trust = testing.trust_store_for(sender, receiver)
    key = sender.key
    data = os.urandom(32)

    def raw_signature() -> None:
        key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    when = dt.datetime(2025, 3, 1, 9, 15, 2, tzinfo=dt.UTC)
    print("rates per second; 'cpu' = per core of CPU time actually used, 'wall' = elapsed time")
    print(
        f"{'size':>6}  {'RSA sigs (cpu)':>14}  {'msgs (cpu)':>10}  {'ratio':>5}  {'RSA sigs (wall)':>15}  {'msgs (wall)':>11}"
    )
    for label, size in (("4 KiB", 4 * 1024), ("1 MiB", 1024 * 1024)):
        original = original_of(size)

        def certify(original: bytes = original) -> None:
            tx = Transaction.from_message(
                original, pec_id=envelopes.new_pec_id(sender.domain, when), when=when
            )
            envelopes.build_acceptance(tx, identity=sender)
            envelope = envelopes.build_transport_envelope(tx, original, identity=sender)
            checked = classify.classify(envelope.raw, trust=trust, at=when)
            assert checked.valid, checked.problems
            envelopes.build_delivery_receipt(
                tx.at(when), tx.to[0], "completa", checked.postacert, identity=receiver
            )

        (sig_wall, sig_cpu), (msg_wall, msg_cpu) = interleaved(raw_signature, certify)
        print(
            f"{label:>6}  {sig_cpu:14.1f}  {msg_cpu:10.1f}  {msg_cpu * 3 / sig_cpu:5.2f}"
            f"  {sig_wall:15.1f}  {msg_wall:11.1f}"
        )
    print(
        "ratio = msgs/s × 3 ÷ RSA-2048 sigs/s (CPU time); targets: ≥ 0.5 at 4 KiB, ≥ 80 msgs/s per core at 1 MiB"
    )


if __name__ == "__main__":
    main()
