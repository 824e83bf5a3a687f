"""The guardrail part of ``warden.yaml``: named policies of scanner rules.

A policy lists the scanners run on the prompt (``input``) and on the answer (``output``), each
with an action and a threshold. Which policy a request gets: its key's ``guard``, else its
model's ``guard``, else ``guard.default_policy``; none means no scanning at all.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from warden.visibility import Public, Secret

Action = Literal["block", "redact", "pseudonymize", "flag"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GuardRule(_Model):
    """One scanner, what to do with what it finds, and from which score."""

    scanner: Public[str] = Field(description="The scanner's name (warden guard scanners lists them).")
    action: Public[Action] = Field(
        "flag", description="block: refuse with a 400; redact: replace the found text with "
        "[TYPE]; pseudonymize (input only): replace it with a stable placeholder and restore "
        "the value in the answer; flag: record only."
    )
    threshold: Public[float] = Field(0.5, ge=0.0, le=1.0, description="Findings scoring below are ignored.")
    options: Secret[dict[str, Any]] = Field(default_factory=dict, description="The scanner's own options.")


class GuardPolicy(_Model):
    """The rules applied to one request."""

    input: list[GuardRule] = Field(default_factory=list, description="Rules run on the prompt.")
    output: list[GuardRule] = Field(default_factory=list, description="Rules run on the answer.")
    canary: Public[bool] = Field(
        False, description="Place a random canary token in the system prompt; an output rule "
        "with scanner system_prompt_leak then acts when the answer repeats it."
    )

    @model_validator(mode="after")
    def _output_actions(self) -> GuardPolicy:
        for i, rule in enumerate(self.output):
            if rule.action == "pseudonymize":
                raise ValueError(f"output[{i}]: pseudonymize is an input action (the answer's "
                                 "placeholders are restored automatically); use redact or block")
        return self


class GuardSettings(_Model):
    """Guardrail policies and which one applies by default."""

    policies: dict[str, GuardPolicy] = Field(
        default_factory=dict, description="Named policies; models and keys refer to them by name."
    )
    default_policy: Public[str | None] = Field(
        None, description="The policy of requests whose key and model name none; unset = none."
    )
    stream_holdback_chars: Public[int] = Field(
        48, ge=0, le=4096, description="Characters of a streamed answer held back until scanned, "
        "so that a redaction or a block happens before the text leaves."
    )
    block_status: Public[int] = Field(
        400, ge=400, le=499, description="HTTP status of a blocked request."
    )

    @model_validator(mode="after")
    def _default_exists(self) -> GuardSettings:
        if self.default_policy is not None and self.default_policy not in self.policies:
            raise ValueError(f"default_policy '{self.default_policy}' is not one of the policies "
                             f"({', '.join(sorted(self.policies)) or 'none defined'})")
        return self
