"""``POST /v1/embeddings`` behind the front-end: the canonical embedding request, one codec per vendor
(pure translators over the shared transport of ``app.providers.transport``) and the service that plans,
splits a batch to the upstream's limit, calls under the orchestrator's breakers, retries and deadline, and
reassembles the vectors in order."""
