"""Telephony: one interface (:mod:`.base`) over Asterisk/AMI, Twilio and a simulated backend."""

from .base import CallEvent, TelephonyBackend, TelephonyError, auto_outcome
from .factory import backend_from_env

__all__ = ["CallEvent", "TelephonyBackend", "TelephonyError", "auto_outcome", "backend_from_env"]
