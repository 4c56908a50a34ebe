"""Local delivery verifies the transport envelope once for the delivery and its receipt."""

from __future__ import annotations

from pecmail.certification import classify as classify_module
from pecmail.mail import pipeline, storage
from pecmail.mail.models import Delivery, Message
from tests.mail import test_pipeline
from tests.mail.test_pipeline import BOB, inbox

# The Messages pipeline tests' submit-as-alice fixture.
submit = test_pipeline.submit


def test_it_classifies_the_envelope_once_per_local_delivery(alice, bob, submit, monkeypatch):
    envelopes_classified: list[bytes] = []
    real_classify = classify_module.classify

    def counting_classify(data, *args, **kwargs):
        envelopes_classified.append(bytes(data))
        return real_classify(data, *args, **kwargs)

    monkeypatch.setattr(classify_module, "classify", counting_classify)
    sent = submit()

    envelope = storage.raw_get(sent.envelope_sha256)
    assert envelopes_classified.count(envelope) == 1
    assert Delivery.objects.get(message=sent).state == Delivery.State.DELIVERED
    assert [m.kind for m in inbox(alice)] == [Message.Kind.ACCEPTANCE, Message.Kind.DELIVERY]
    assert inbox(bob).get().pec_id == sent.pec_id


def test_it_gives_the_same_receipt_with_or_without_a_precomputed_classification(alice, bob, submit, provider):
    sent = submit()
    envelope = storage.raw_get(sent.envelope_sha256)
    precomputed = classify_module.classify(envelope, trust=pipeline.trust_store())

    built_plain, kind_plain = pipeline.delivery_receipt_build(
        envelope=envelope, recipient=BOB, delivered=True
    )
    built_given, kind_given = pipeline.delivery_receipt_build(
        envelope=envelope, recipient=BOB, delivered=True, classification=precomputed
    )
    assert kind_plain == kind_given == Message.Kind.DELIVERY
    assert built_plain.kind == built_given.kind
    (again,) = pipeline.envelope_deliver_local(raw=envelope, recipients=[BOB], classification=precomputed)
    assert (again.outcome, again.message.pk) == ("delivered", inbox(bob).get().pk)
