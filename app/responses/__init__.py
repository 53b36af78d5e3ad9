"""Stored responses of the Responses API (``previous_response_id``, ``GET``/``DELETE /v1/responses/{id}``)."""
